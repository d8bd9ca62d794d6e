"""The live view without ROS: decimation, skeleton, JSON framing, the HTTP/SSE server with
slow and closed browsers, settings errors."""
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import biorbd
import numpy as np
import pytest

from biosig_ros.errors import ConfigError
from biosig_ros.viewers.http_server import ClientQueue
from biosig_ros.viewers.live_state import LiveState, dumps_numbers
from biosig_ros.viewers.live_view import LiveView, LiveViewSettings
from biosig_ros.viewers.skeleton import Skeleton, dof_display
from biosig_ros.viewers.streams import (MINMAX, PoseSeries, RateGate, SignalSeries,
                                        picked_rows)

from ros_harness import REPO, wait_until

WU = REPO / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
TOPICS = {"envelope": "/emg/envelope", "raw": "/emg/raw", "markers": "/markers",
          "joints": "/ik/joint_states"}


def random_chunks(total: int, rng, largest: int = 37):
    start = 0
    while start < total:
        size = int(rng.integers(1, largest))
        yield start, min(total, start + size)
        start += size


@pytest.fixture(scope="module")
def skeleton():
    return Skeleton.load(str(WU))


# --- decimation -------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [1, 3, 20])
def test_decimation_keeps_the_same_samples_whatever_the_chunking(step):
    rng = np.random.default_rng(step)
    signal = rng.standard_normal((1000, 3))
    kept = []
    for start, stop in random_chunks(len(signal), rng):
        kept += [start + r for r in picked_rows(start, stop - start, step)]
    assert kept == list(range(step - 1, 1000, step))


def test_signal_series_points_are_the_samples_at_their_indices_with_their_times():
    series = SignalSeries(window_s=2.0, target_rate=100.0)
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((4000, 2))
    for start, stop in random_chunks(len(signal), rng):
        series.add(signal[start:stop], 10_000 + start, 50.0 + start / 2000, 2000.0,
                   ["a", "b"], "V")
    assert series.step == 20
    points = series.take_new()
    assert [p[0] for p in points] == list(range(10_019, 14_000, 20))
    for index, t, values in points:
        assert values == signal[index - 10_000].tolist()
        assert t == pytest.approx(50.0 + (index - 10_000) / 2000)
    assert series.take_new() == []
    history = series.history()
    assert len(history) <= 2.0 * 100 + 2 and history[-1] == points[-1]  # bounded window


def test_minmax_series_gives_each_block_its_extremes_across_chunk_boundaries():
    series = SignalSeries(window_s=10.0, target_rate=250.0, mode=MINMAX)
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((2000, 3))
    for start, stop in random_chunks(len(signal), rng):
        series.add(signal[start:stop], start, start / 2000, 2000.0, ["a", "b", "c"], "V")
    points = series.take_new()
    assert len(points) == 2000 // 8
    for index, _, low, high in points:
        block = signal[index - 7:index + 1]
        assert low == block.min(axis=0).tolist() and high == block.max(axis=0).tolist()


def test_new_channel_names_restart_the_series():
    series = SignalSeries(10.0, 100.0)
    series.add(np.ones((20, 2)), 0, 0.0, 2000.0, ["a", "b"], "V")
    version = series.version
    series.add(np.ones((20, 3)), 20, 0.01, 2000.0, ["a", "b", "c"], "fraction of MVC")
    assert series.version == version + 1
    assert all(len(p[2]) == 3 for p in series.history())


def test_rate_gate_keeps_about_the_rate_by_stamps_and_restarts_when_they_go_back():
    gate = RateGate(30.0)
    kept = [k for k in range(300) if gate.due(1000 + k / 100)]
    assert 88 <= len(kept) <= 101  # 3 s of 100 Hz frames at about 30 per second
    assert gate.due(900.0)  # a restarted source (stamps back in time) is not shut out
    assert RateGate(0.0).due(1.0) and RateGate(0.0).due(1.0)


def test_pose_series_decimates_frames_by_stamp():
    series = PoseSeries(window_s=10.0, target_rate=50.0)
    for k in range(100):
        series.add_frame([float(k), 2.0 * k], 10 + k / 100, ["q0", "q1"])
    points = series.take_new()
    assert 45 <= len(points) <= 51
    assert all(p[2] == [float(p[0]), 2.0 * p[0]] for p in points)


# --- skeleton ----------------------------------------------------------------------------------

def test_skeleton_has_one_line_per_parent_child_segment_pair(skeleton):
    model = biorbd.Model(str(WU))
    names = [model.segment(i).name().to_string() for i in range(model.nbSegment())]
    expected = {(names.index(model.segment(i).parent().to_string()), i)
                for i in range(model.nbSegment())
                if model.segment(i).parent().to_string() in names}
    assert set(skeleton.pairs) == expected and len(skeleton.pairs) == len(expected) == 35


def test_skeleton_origins_are_biorbds_global_segment_frames(skeleton):
    model = biorbd.Model(str(WU))
    q = np.random.default_rng(2).uniform(-0.3, 0.3, model.nbQ())
    expected = np.array([j.to_array()[:3, 3] for j in model.allGlobalJCS(q)])
    np.testing.assert_allclose(skeleton.origins(q), expected, atol=1e-12)
    lines = skeleton.line_points(expected)
    parent, child = skeleton.pairs[-1]
    np.testing.assert_allclose(lines[-1], [expected[parent], expected[child]])
    # the page and the MarkerArray ask for the same pose: computed once, then the next pose
    assert skeleton.origins(q.copy()) is skeleton.origins(q)
    moved = q + 0.1
    np.testing.assert_allclose(
        skeleton.origins(moved),
        np.array([j.to_array()[:3, 3] for j in model.allGlobalJCS(moved)]), atol=1e-12)


def test_q_is_taken_by_dof_name_whatever_the_order(skeleton):
    q = np.arange(len(skeleton.dof_names), dtype=float)
    order = list(reversed(range(len(q))))
    names = [skeleton.dof_names[i] for i in order] + ["extra"]
    np.testing.assert_array_equal(skeleton.q_from(names, list(q[order]) + [9.0]), q)
    assert skeleton.q_from(names[1:], list(q[order][1:]) + [9.0]) is None  # a DoF missing


def test_dofs_are_shown_in_degrees_and_millimetres():
    shown = dof_display(["thorax_TransX", "elbow_RotZ"], None)
    assert [d["unit"] for d in shown] == ["mm", "deg"]
    assert shown[1]["scale"] == pytest.approx(180 / np.pi)


# --- framing -----------------------------------------------------------------------------------

def make_state(skeleton=None, clock=time.time) -> LiveState:
    return LiveState(TOPICS, window_s=5.0, chart_rate=100.0, raw_chart_rate=250.0,
                     refresh_rate=30.0, skeleton=skeleton, clock=clock)


def test_frame_carries_new_points_markers_skeleton_and_meta_once(skeleton):
    state = make_state(skeleton)
    envelope = np.arange(40, dtype=float).reshape(20, 2)
    state.on_signal("envelope", envelope, 0, 100.0, 2000.0, ["M1", "M2"], "fraction of MVC")
    positions = np.array([[0.1, 0.2, 0.3], [np.nan, np.nan, np.nan]])
    state.on_markers(["A", "B"], positions, [False, True], 7, 100.0)
    q = np.zeros(len(skeleton.dof_names))
    assert state.on_joints(skeleton.dof_names, q, 100.0) is not None
    frame, with_raw = state.frame(with_raw=False)
    assert with_raw is None
    message = json.loads(frame)
    assert message["type"] == "frame"
    assert message["envelope"] == [[19, pytest.approx(100.0095), [38.0, 39.0]]]
    assert message["markers"] == {"frame": 7, "t": 100.0, "pos": [[0.1, 0.2, 0.3], None],
                                  "occ": [0, 1]}
    assert len(message["skeleton"]["origins"]) == len(skeleton.segment_names)
    meta = message["meta"]
    assert meta["streams"]["envelope"]["mvc"] is True
    assert meta["skeleton"]["pairs"] == [list(p) for p in skeleton.pairs]
    assert [d["name"] for d in meta["dofs"]] == skeleton.dof_names
    second = json.loads(state.frame(with_raw=False)[0])
    assert "meta" not in second and second["envelope"] == [] and second["seq"] == 2


def test_skeleton_is_shown_with_the_markers_of_its_own_frame_and_the_lag(skeleton):
    """Markers at 100 Hz, the IK pose 37 frames behind (370 ms, as measured on a loaded
    machine): the view shows the markers of the pose's frame, not the newest, and says how far
    behind the newest markers that frame is; without a marker frame of the pose's stamp (a pose
    older than the kept frames, or none) the newest markers and the skeleton's lag."""
    from biosig_ros.viewers import live_state

    state = make_state(skeleton)
    q = np.zeros(len(skeleton.dof_names))
    for k in range(100):
        state.on_markers(["A"], np.array([[k / 100.0, 0.0, 1.0]]), [False], k, 50.0 + k / 100)
    # stamps as the node computes them from both headers (sec + nanosec * 1e-9)
    state.on_joints(skeleton.dof_names, q, 50.0 + 62 / 100)
    message = json.loads(state.frame(False)[0])
    assert message["markers"]["frame"] == 62 and message["markers"]["pos"] == [[0.62, 0.0, 1.0]]
    assert message["skeleton"]["t"] == message["markers"]["t"]
    assert message["sync"]["paired"] is True
    assert message["sync"]["lag"] == pytest.approx(0.37)
    init = json.loads(state.snapshot(False))
    assert init["markers"]["frame"] == 62 and init["sync"]["paired"] is True
    # caught up: the newest frame, no lag
    state.on_joints(skeleton.dof_names, q, 50.0 + 99 / 100)
    message = json.loads(state.frame(False)[0])
    assert message["markers"]["frame"] == 99 and message["sync"] == {"paired": True, "lag": 0.0}
    # a pose whose frame is no longer kept: the newest markers, and the skeleton's lag
    for k in range(100, 100 + live_state._PAIRED_FRAMES):
        state.on_markers(["A"], np.array([[k / 100.0, 0.0, 1.0]]), [False], k, 50.0 + k / 100)
    state.on_joints(skeleton.dof_names, q, 50.0 + 99 / 100)
    message = json.loads(state.frame(False)[0])
    newest = 99 + live_state._PAIRED_FRAMES
    assert message["markers"]["frame"] == newest and message["sync"]["paired"] is False
    assert message["sync"]["lag"] == pytest.approx(live_state._PAIRED_FRAMES / 100)
    # no skeleton: the newest markers, no sync
    plain = make_state()
    plain.on_markers(["A"], np.array([[0.0, 0.0, 1.0]]), [False], 3, 1.0)
    message = json.loads(plain.frame(False)[0])
    assert message["markers"]["frame"] == 3 and message["sync"] is None


def test_occluded_marker_is_drawn_where_it_was_last_seen():
    state = make_state()
    state.on_markers(["A"], np.array([[1.0, 2.0, 3.0]]), [False], 1, 1.0)
    state.on_markers(["A"], np.array([[np.nan] * 3]), [True], 2, 1.01)
    markers = json.loads(state.frame(False)[0])["markers"]
    assert markers["pos"] == [[1.0, 2.0, 3.0]] and markers["occ"] == [1]


def test_raw_points_only_for_browsers_that_asked_and_non_finite_values_as_null():
    state = make_state()
    data = np.full((8, 1), np.nan)
    data[7, 0] = 0.5
    state.on_signal("raw", data, 0, 1.0, 2000.0, ["M1"], "V")
    plain, with_raw = state.frame(with_raw=True)
    assert "raw" not in json.loads(plain)
    assert json.loads(with_raw)["raw"][0][2:] == [[0.5], [0.5]]
    assert dumps_numbers([float("nan"), float("inf"), -float("inf"), 1.5]) == "[null,null,null,1.5]"


def test_snapshot_holds_the_history_sent_so_far_for_a_new_browser():
    state = make_state()
    for k in range(10):
        state.on_signal("envelope", np.full((20, 1), float(k)), 20 * k, k / 100, 2000.0, ["M1"],
                        "V")
    state.frame(False)  # a refresh took them as new: the history keeps them
    state.on_signal("envelope", np.full((20, 1), 10.0), 200, 0.1, 2000.0, ["M1"], "V")
    snapshot = json.loads(state.snapshot(with_raw=False))
    assert snapshot["type"] == "init" and snapshot["seq"] == 1
    # the 11th chunk is not in it: the next frame (seq 2) brings it
    assert [p[2][0] for p in snapshot["history"]["envelope"]] == [float(k) for k in range(10)]
    assert json.loads(state.frame(False)[0])["envelope"][0][2] == [10.0]
    assert "raw" not in snapshot["history"]
    assert snapshot["stats"]["envelope"]["messages"] == 11


def test_stats_report_rates_gaps_and_delay():
    now = [1000.0]
    state = make_state(clock=lambda: now[0])
    for k in list(range(5)) + list(range(8, 10)):
        state.on_signal("envelope", np.zeros((20, 1)), 20 * k, now[0] - 0.004, 2000.0, ["M1"], "V")
    stats = json.loads(state.frame(False)[0])["stats"]["envelope"]
    assert stats["gaps"] == 1 and stats["missing"] == 60
    assert stats["delay_ms"] == pytest.approx(4.0)


# --- server ------------------------------------------------------------------------------------

@pytest.fixture
def view():
    live = LiveView(LiveViewSettings(port=0, model_path="", refresh_rate=50.0, client_queue=5))
    live.start()
    yield live
    live.close()


def feed(view, k: int) -> None:
    view.state.on_signal("envelope", np.full((20, 2), float(k)), 20 * k, time.time(), 2000.0,
                         ["M1", "M2"], "V")


class EventReader:
    """A browser-like SSE client reading in a thread."""

    def __init__(self, url: str, read: bool = True):
        self.response = urllib.request.urlopen(url + "events", timeout=30)
        self.messages: list[dict] = []
        if read:
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        init_seq = -1
        try:
            for line in self.response:
                if line.startswith(b"data: "):
                    message = json.loads(line[6:])
                    if message["type"] == "init":
                        init_seq = message["seq"]
                    elif message["seq"] <= init_seq:
                        continue  # as the page does: the snapshot already holds it
                    self.messages.append(message)
        except (OSError, ValueError):
            pass


def test_page_and_assets_are_served_and_unknown_paths_are_404(view):
    page = urllib.request.urlopen(view.url, timeout=10).read().decode()
    assert "app.js" in page and "style.css" in page and "http" not in page.split("<body>")[1]
    script = urllib.request.urlopen(view.url + "app.js", timeout=10)
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert b"__liveView" in script.read()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(view.url + "nothing", timeout=10)
    assert error.value.code == 404
    state = json.loads(urllib.request.urlopen(view.url + "state.json", timeout=10).read())
    assert state["type"] == "init"


def test_browsers_get_a_snapshot_then_every_frame(view):
    feed(view, 0)
    readers = [EventReader(view.url) for _ in range(3)]
    assert wait_until(lambda: all(r.messages for r in readers), 20)
    for k in range(1, 30):
        feed(view, k)
        time.sleep(0.02)
    assert wait_until(lambda: all(
        any(m.get("envelope") and m["envelope"][-1][0] == 20 * 29 + 19 for m in r.messages)
        for r in readers), 20)
    for reader in readers:
        assert reader.messages[0]["type"] == "init"
        indices = [p[0] for m in reader.messages for p in m.get("envelope", [])]
        indices = [p[0] for p in reader.messages[0]["history"]["envelope"]] + indices
        assert indices == sorted(set(indices)) and indices[-1] == 599  # none lost, no repeat


def test_a_browser_that_stops_reading_neither_blocks_the_others_nor_grows_a_queue(view):
    stuck = socket.create_connection(("127.0.0.1", view.server.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")  # and never reads
    reader = EventReader(view.url)
    assert wait_until(lambda: len(view.server.clients()) == 2 and reader.messages, 10)
    # 15 MB of frames: far more than the socket buffers hold for the stuck browser
    pad = "x" * 100_000

    def broadcast_all():
        for k in range(150):
            frame = json.dumps({"type": "frame", "seq": 10**9 + k, "pad": pad})
            view.server.broadcast(frame, None)
            time.sleep(0.01)

    sender = threading.Thread(target=broadcast_all, daemon=True)
    sender.start()
    sender.join(60)
    assert not sender.is_alive(), "broadcast waited for a browser"
    assert wait_until(lambda: any(m["seq"] == 10**9 + 149 for m in reader.messages), 30)
    assert wait_until(lambda: view.server.frames_dropped > 0, 20)  # the stuck one's frames
    assert all(len(c._frames) <= view.server.client_queue for c in view.server.clients())
    stuck.close()
    # the stuck connection ends (write timeout or reset); the reader keeps going
    assert wait_until(lambda: len(view.server.clients()) == 1, 30)
    count = len(reader.messages)
    assert wait_until(lambda: len(reader.messages) > count + 5, 20)


def test_closed_browsers_are_forgotten(view):
    readers = [EventReader(view.url) for _ in range(2)]
    assert wait_until(lambda: len(view.server.clients()) == 2, 10)
    for reader in readers:
        reader.response.close()
    for k in range(20):
        feed(view, k)
        time.sleep(0.03)
    assert wait_until(lambda: not view.server.clients(), 20)


def test_too_many_browsers_get_503():
    live = LiveView(LiveViewSettings(port=0, model_path="", max_clients=1))
    live.start()
    try:
        EventReader(live.url)
        assert wait_until(lambda: len(live.server.clients()) == 1, 10)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(live.url + "events", timeout=10)
        assert error.value.code == 503
    finally:
        live.close()


def test_client_queue_drops_everything_pending_and_asks_for_a_snapshot():
    queue = ClientQueue(raw=False, limit=3)
    for k in range(5):
        queue.put(str(k))
    assert queue.dropped == 3
    assert queue.take(0.1) == (True, [])  # resync first: the charts stay consistent
    queue.put("5")
    assert queue.take(0.1) == (False, ["5"])
    queue.close()
    assert queue.take(0.1) is None


def test_a_taken_port_moves_to_another_and_an_address_not_here_is_a_config_error():
    first = LiveView(LiveViewSettings(port=0, model_path=""))
    blockers = []
    try:
        taken = first.server.port
        second = LiveView(LiveViewSettings(port=taken, model_path=""))
        assert second.server.port != taken
        second.close()
        for port in range(taken + 1, min(taken + 10, 65536)):
            try:
                blocker = socket.socket()
                blocker.bind(("127.0.0.1", port))
                blocker.listen()
                blockers.append(blocker)
            except OSError:
                pass  # already taken by someone else: just as good
        third = LiveView(LiveViewSettings(port=taken, model_path=""))  # any free port then
        # it serves on a port of its own (past the next ten, unless another process freed one
        # of them meanwhile: other test runs share the machine)
        held = {taken, *(blocker.getsockname()[1] for blocker in blockers)}
        assert third.server.port not in held
        socket.create_connection(("127.0.0.1", third.server.port), timeout=30).close()
        third.close()
        with pytest.raises(ConfigError, match="cannot serve the live view on 192.0.2.1"):
            LiveView(LiveViewSettings(host="192.0.2.1", port=0, model_path=""))
    finally:
        for blocker in blockers:
            blocker.close()
        first.close()


@pytest.mark.parametrize("values, message", [
    ({"port": 70000}, "port"), ({"refresh_rate": 0.0}, "refresh_rate"),
    ({"window_s": float("nan")}, "window_s"), ({"raw_topic": "~/raw"}, "private"),
    ({"viz_rate": -1.0}, "viz_rate")])
def test_bad_settings_name_the_parameter(values, message):
    with pytest.raises(ConfigError, match=message):
        LiveViewSettings(**values)


def test_shipped_viewer_configs_name_the_topics_the_node_publishes():
    """config/rviz/demo.rviz and the PlotJuggler layout cannot run here: at least their topic
    and series names must be the live view's defaults, the demo's channels and the model's DoFs."""
    import xml.etree.ElementTree as ElementTree

    import yaml

    settings = LiveViewSettings()
    rviz = yaml.safe_load((REPO / "config" / "rviz" / "demo.rviz").read_text(encoding="utf-8"))
    manager = rviz["Visualization Manager"]
    (display,) = [d for d in manager["Displays"] if d["Class"].endswith("MarkerArray")]
    assert display["Topic"]["Value"] == "/" + settings.viz_markers_topic
    assert display["Namespaces"] == {"markers": True, "skeleton": True}
    assert manager["Global Options"]["Fixed Frame"] == settings.frame_id
    layout = ElementTree.parse(REPO / "config" / "plotjuggler" / "demo_layout.xml")
    curves = [c.get("name") for c in layout.iter("curve")]
    replay = yaml.safe_load((REPO / "config" / "replay_abd.yaml").read_text(encoding="utf-8"))
    channels = replay["/**"]["ros__parameters"]["channel_names"]
    envelope = [c for c in curves if c.startswith("/" + settings.envelope_channels_topic + "/")]
    assert [c.split("/")[-2] for c in envelope] == channels
    dofs = Skeleton.load(str(WU)).dof_names
    joints = [c.split("/")[-2] for c in curves if c.startswith("/" + settings.joints_topic)]
    assert joints and set(joints) <= set(dofs)
