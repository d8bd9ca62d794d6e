"""The operator panel's ROS-free parts: bounded decimated buffers, namespaces, answers."""
import numpy as np
import pytest

from biosig_ros.panel.actions import (ACTIONS_BY_KEY, absent_answer, describe_answer,
                                      service_name)
from biosig_ros.panel.model import PanelModel, Ring, namespaces_of, stream_rows


def test_ring_keeps_the_newest_rows_in_order():
    ring = Ring(5, 2)
    for start in range(0, 12, 3):
        index = np.arange(start, start + 3)
        ring.add(index, index * 0.1, np.stack([index, -index], axis=1).astype(float))
    index, t, values = ring.rows()
    assert index.tolist() == [7, 8, 9, 10, 11]
    assert np.allclose(t, index * 0.1)
    assert values[:, 1].tolist() == [-7, -8, -9, -10, -11]
    ring.add(np.arange(100, 108), np.zeros(8), np.zeros((8, 2)))  # more than it holds
    assert ring.rows()[0].tolist() == [103, 104, 105, 106, 107]


@pytest.mark.parametrize("chunk", [1, 7, 20, 64])
def test_envelope_points_are_the_same_whatever_the_chunking(chunk):
    rate, model = 2000.0, PanelModel(window_s=2.0, points_per_second=50.0)
    signal = np.random.default_rng(1).random((6000, 3))
    for first in range(0, len(signal), chunk):
        block = signal[first:first + chunk]
        model.on_envelope(block, first, 100.0 + first / rate, rate, ["a", "b", "c"], "V")
    shown = model.snapshot().envelope
    # every 40th sample (2000 / 50), the newest of its block; the last 2 s (+2 points)
    assert np.all(shown.index % 40 == 39)
    assert shown.index[-1] == 5999 and len(shown.index) == 102
    assert np.array_equal(shown.values, signal[shown.index])
    assert np.allclose(shown.t, 100.0 + shown.index / rate)
    assert shown.unit == "V"


def test_mvc_fraction_is_shown_in_percent_with_bars():
    model = PanelModel(points_per_second=10.0)
    model.on_envelope(np.array([[0.1, 0.5]] * 100), 0, 0.0, 100.0, ["x", "y"], "")
    snap = model.snapshot()
    assert snap.envelope.unit == "% MVC"
    assert snap.mvc_percent.tolist() == [10.0, 50.0]
    model.on_envelope(np.array([[0.1, 0.5]] * 100), 100, 1.0, 100.0, ["x", "y"], "V")
    assert model.snapshot().mvc_percent is None  # volts: no bars


def test_joint_angles_by_stamp_in_degrees_and_millimetres():
    model = PanelModel(points_per_second=10.0)
    for k in range(100):  # 100 Hz for 1 s
        model.on_joints(["TransX", "elbow_RotZ"], [0.001 * k, 0.01 * k], 5.0 + k / 100)
    joints = model.snapshot().joints
    assert joints.unit == "mm,deg"
    assert 9 <= len(joints.t) <= 11
    k = np.round((joints.t - 5.0) * 100).astype(int)
    assert np.allclose(joints.values[:, 0], k * 1.0)
    assert np.allclose(joints.values[:, 1], np.degrees(0.01 * k))


def test_clear_forgets_the_previous_namespace():
    model = PanelModel()
    model.on_joints(["a"], [1.0], 1.0)
    model.on_assist({"state": "enabled"})
    model.on_diagnostics([{"name": "ik", "level": 0, "message": "ok", "values": {}}])
    before = model.version
    model.clear("/s2")
    snap = model.snapshot()
    assert snap.version > before and snap.namespace == "/s2"
    assert snap.joints.names == [] and snap.assist is None and snap.diagnostics == []


def test_namespaces_are_found_from_the_package_topics():
    topics = [("/emg/envelope", ["biosig_ros/msg/SignalChunk"]),
              ("/s1/markers", ["biosig_ros/msg/MarkerSet"]),
              ("/lab/s2/ik/quality", ["biosig_ros/msg/IkQuality"]),
              ("/s3/custom/thing", ["biosig_ros/msg/SignalChunk"]),
              ("/other/emg/envelope", ["std_msgs/msg/String"]),
              ("/diagnostics", ["diagnostic_msgs/msg/DiagnosticArray"])]
    assert namespaces_of(topics) == ["/", "/lab/s2", "/s1", "/s3/custom"]


def test_service_names_and_answers():
    start = ACTIONS_BY_KEY["bridge_start"]
    assert service_name("/", start) == "/bridge/start_recording"
    assert service_name("/s1/", start) == "/s1/bridge/start_recording"
    assert describe_answer({"success": True, "message": "recording to x.bio"}) == (
        True, "recording to x.bio")
    ok, text = describe_answer({"success": True, "message": "MVC applied",
                                "channel_names": ["EMG1"], "mvc": [1.5e-5]})
    assert ok and text.endswith("EMG1 1.5e-05 V")
    assert describe_answer({"success": False, "message": ""}) == (False, "refused")
    absent = absent_answer(ACTIONS_BY_KEY["assist_enable"], "/assist/enable", 3.0)
    assert absent.absent and not absent.success
    assert "ABSENT" in absent.line() and "/assist/enable" in absent.line()
    assert ACTIONS_BY_KEY["assist_enable"].confirm  # enabling asks first
    assert not ACTIONS_BY_KEY["assist_disable"].confirm


def test_stream_rows_pick_the_health_values():
    rows = stream_rows([{"name": "monitor", "level": 1, "message": "gaps",
                         "values": {"emg_raw_rate": "2000", "emg_raw_gaps": "1",
                                    "envelope_delay_ms": "3", "port": "5000"}}])
    assert rows[0]["health"] == {"emg_raw_rate": "2000", "emg_raw_gaps": "1",
                                 "envelope_delay_ms": "3"}
