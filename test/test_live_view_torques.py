"""The live view's joint torques without ROS (viewers/torques.py, LiveState): the chosen DoFs'
efforts of torque/muscle and torque/inverse_dynamics, each with its own stamps and message
index, in the JSON the page draws; DoFs a topic lacks; silent topics; bounded memory."""
import json

import numpy as np
import pytest

from biosig_ros.viewers.live_state import LiveState
from biosig_ros.viewers.live_view import LiveViewSettings
from biosig_ros.viewers.torques import TORQUE_STREAMS, TorqueSeries

ELBOW, SHOULDER = "ulna_elbow_flexion_RotZ", "humerus_shoulder_ele_RotY"
MESSAGE_DOFS = ["thorax_RotX", SHOULDER, "humerus_shoulder_rotation_RotZ", ELBOW]
TOPICS = {"envelope": "/emg/envelope", "torque_muscle": "/s1/torque/muscle",
          "torque_inverse_dynamics": "/s1/torque/inverse_dynamics"}


def make_state(dofs=(ELBOW, SHOULDER), clock=lambda: 1000.0, window_s=5.0, rate=100.0):
    return LiveState(TOPICS, window_s=window_s, chart_rate=rate, raw_chart_rate=250.0,
                     refresh_rate=30.0, clock=clock, torque_dofs=list(dofs))


def efforts(k: int) -> list[float]:
    return [100.0 * k + d for d in range(len(MESSAGE_DOFS))]


def test_series_keeps_the_chosen_dofs_in_their_order_whatever_the_message_order():
    series = TorqueSeries([ELBOW, SHOULDER], window_s=5.0, target_rate=100.0)
    series.add_efforts(MESSAGE_DOFS, efforts(1), 10.00)
    reordered = MESSAGE_DOFS[::-1]
    series.add_efforts(reordered, efforts(2)[::-1], 10.01)
    assert series.take_new() == [[0, 10.00, [103.0, 101.0]], [1, 10.01, [203.0, 201.0]]]
    meta = series.meta()
    assert meta["channels"] == [ELBOW, SHOULDER] and meta["unit"] == "N.m"
    assert meta["missing"] == [] and meta["available"] == 4


def test_a_dof_the_topic_does_not_name_is_null_and_listed_as_missing():
    series = TorqueSeries([ELBOW, "not_a_dof"], window_s=5.0, target_rate=100.0)
    version = series.version
    series.add_efforts(MESSAGE_DOFS, efforts(1), 10.0)
    assert series.take_new() == [[0, 10.0, [103.0, None]]]
    assert series.meta()["missing"] == ["not_a_dof"] and series.version > version
    version = series.version
    series.add_efforts(MESSAGE_DOFS, efforts(2), 10.01)  # same names: meta unchanged
    assert series.version == version


def test_names_and_efforts_that_do_not_pair_are_refused_and_nothing_is_kept():
    state = make_state()
    with pytest.raises(ValueError, match="4 names, 0 efforts"):
        state.on_torque("torque_muscle", MESSAGE_DOFS, [], 10.0)
    message = json.loads(state.frame(False)[0])
    assert message["torque_muscle"] == []
    assert message["stats"]["torque_muscle"]["messages"] == 0


def test_frame_carries_both_torques_with_their_own_stamps_meta_and_nulls_for_non_finite():
    state = make_state()
    for k in range(3):
        state.on_torque("torque_muscle", MESSAGE_DOFS, efforts(k), 50.0 + k / 100)
    values = efforts(7)
    values[3] = float("nan")  # e.g. an inverse dynamics that diverged: drawn as a gap
    state.on_torque("torque_inverse_dynamics", MESSAGE_DOFS, values, 49.5)
    message = json.loads(state.frame(False)[0])
    assert message["torque_muscle"] == [[k, 50.0 + k / 100, [100.0 * k + 3, 100.0 * k + 1]]
                                        for k in range(3)]
    assert message["torque_inverse_dynamics"] == [[0, 49.5, [None, 701.0]]]
    meta = message["meta"]
    assert meta["torques"] == {"dofs": [ELBOW, SHOULDER], "unit": "N.m",
                               "streams": list(TORQUE_STREAMS)}
    for stream in TORQUE_STREAMS:
        assert meta["streams"][stream]["topic"] == TOPICS[stream]
        assert meta["streams"][stream]["channels"] == [ELBOW, SHOULDER]
    stats = message["stats"]
    assert stats["torque_muscle"]["messages"] == 3
    assert stats["torque_inverse_dynamics"]["messages"] == 1
    later = json.loads(state.frame(False)[0])
    assert later["torque_muscle"] == [] and "meta" not in later


def test_silent_torque_topics_are_reported_with_no_messages_and_none_without_dofs():
    """What the page's "no torque topic is publishing" rests on."""
    state = make_state()
    snapshot = json.loads(state.snapshot(False))
    assert snapshot["stats"]["torque_muscle"] == {"topic": TOPICS["torque_muscle"],
                                                  "messages": 0}
    assert snapshot["stats"]["torque_inverse_dynamics"]["messages"] == 0
    assert snapshot["history"]["torque_muscle"] == []
    settings = LiveViewSettings(torque_dofs=[""])
    assert settings.topics()["torque_muscle"] == settings.topics()[
        "torque_inverse_dynamics"] == ""
    hidden = LiveState(settings.topics(), 5.0, 100.0, 250.0, 30.0, torque_dofs=[""])
    snapshot = json.loads(hidden.snapshot(False))
    assert snapshot["meta"]["torques"]["dofs"] == []
    assert "torque_muscle" not in snapshot["stats"]


def test_default_dofs_are_the_assisted_elbow_and_topics_relative():
    settings = LiveViewSettings()
    assert settings.torque_dofs == [ELBOW]
    topics = settings.topics()
    assert topics["torque_muscle"] == "torque/muscle"
    assert topics["torque_inverse_dynamics"] == "torque/inverse_dynamics"


def test_snapshot_holds_the_torques_already_sent_and_the_frame_the_rest():
    state = make_state()
    state.on_torque("torque_muscle", MESSAGE_DOFS, efforts(0), 10.0)
    state.frame(False)
    state.on_torque("torque_muscle", MESSAGE_DOFS, efforts(1), 10.01)
    snapshot = json.loads(state.snapshot(False))
    assert snapshot["history"]["torque_muscle"] == [[0, 10.0, [3.0, 1.0]]]
    assert json.loads(state.frame(False)[0])["torque_muscle"] == [[1, 10.01, [103.0, 101.0]]]


def test_memory_is_bounded_and_points_are_chosen_by_stamp_at_the_chart_rate():
    state = make_state(window_s=2.0, rate=50.0)
    stamps = 100.0 + np.arange(20_000) / 1000.0  # 20 s of torques at 1 kHz
    sent = 0
    for k, stamp in enumerate(stamps):
        state.on_torque("torque_muscle", MESSAGE_DOFS, efforts(k), float(stamp))
        if k % 33 == 0:
            sent += len(json.loads(state.frame(False)[0])["torque_muscle"])
    sent += len(json.loads(state.frame(False)[0])["torque_muscle"])
    assert sent == pytest.approx(20 * 50, abs=2)  # about chart_rate points per second
    history = json.loads(state.snapshot(False))["history"]["torque_muscle"]
    assert len(history) <= 2.0 * 50 + 2
    assert history[-1][1] == pytest.approx(stamps[-1], abs=0.02)
    index = history[-1][0]
    assert history[-1][2] == [100.0 * index + 3, 100.0 * index + 1]  # the message at its index
