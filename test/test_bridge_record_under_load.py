"""The bridge's .bio loses nothing the MCAP keeps (#22): the bridge and mcap_recorder record
the same replay (abd.bio: 14000 EMG samples, 700 marker frames, at 2x) while busy loops load
every CPU (started here and killed by their PID). Both subscribe with the same QoS policy (reliable
when the publishers are, same depth); every EMG sample index and marker frame the MCAP holds is
in the .bio, with the same values."""
import os
import signal
import subprocess
import sys

import numpy as np
from biosiglive import load
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from biosig_ros.ros.qos import RECORDING_DEPTH

import pytest
from ros_harness import NodeProcess, shipped_parameters, wait_until

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

BUSY_LOOP = "while True:\n    pass\n"


def mcap_contents(path):
    emg, frames = {}, set()
    with open(path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, _, ros in reader.iter_decoded_messages(log_time_order=False):
            if channel.topic == "/emg/raw":
                data = np.reshape(ros.data, (ros.sample_count, -1))
                for offset, row in enumerate(data):
                    emg[ros.first_sample_index + offset] = row
            elif channel.topic == "/markers":
                frames.add(ros.frame_number)
    return emg, frames


def bio_contents(path):
    data = load(str(path))
    indices = np.concatenate([r[0] for r in data["raw_device_data_index"]])
    values = np.concatenate([r[0] for r in data["raw_device_data"]], axis=-1).T
    frames = np.concatenate([r[0] for r in data["marker_set_data_index"]])
    return dict(zip(indices.tolist(), values)), set(frames.tolist())


def test_the_bio_holds_every_sample_the_mcap_holds_under_cpu_load(tmp_path):
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
             for _ in range((os.cpu_count() or 2) + 1)]
    try:
        bridge = NodeProcess("biosig_ros.nodes.bridge_node", "bridge", {
            "port": 0, "record_directory": str(tmp_path), "record_on_start": True,
            "record_path": "run", "max_file_bytes": 0})
        recorder = NodeProcess("biosig_ros.nodes.mcap_recorder_node", "mcap_recorder", {
            "topics": ["/emg/raw", "/markers"], "record_directory": str(tmp_path),
            "record_on_start": True, "record_path": "run", "max_file_bytes": 0})
        # The replay starts once both recorders subscribe to both topics: both see everything.
        replay = NodeProcess("biosig_ros.nodes.replay_node", "replay", shipped_parameters(
            "replay_abd.yaml", loop=False, wait_for_nodes=[], wait_for_subscribers=2,
            wait_timeout=300.0, speed=2.0))  # twice the messages per second, half the loops' time
        with bridge, recorder, replay:
            assert replay.wait_for_output("replay finished", timeout=300), replay.output()
            assert "without all consumers" not in replay.output()
            # Let the last messages reach both (liveness only), then stop: both close their files.
            wait_until(lambda: False, timeout=3.0)
            assert bridge.stop() == 0 and recorder.stop() == 0
            bridge_log, recorder_log = bridge.output(), recorder.output()
    finally:
        for loop in loops:
            os.kill(loop.pid, signal.SIGKILL)
            loop.wait()
    assert f"subscribed /emg/raw (reliable, depth {RECORDING_DEPTH})" in bridge_log, bridge_log
    assert "recording /emg/raw (biosig_ros/msg/SignalChunk, reliable)" in recorder_log

    mcap_emg, mcap_frames = mcap_contents(tmp_path / "run.mcap")
    bio_emg, bio_frames = bio_contents(tmp_path / "run.bio")
    assert mcap_emg and mcap_frames
    missing = sorted(set(mcap_emg) - set(bio_emg))
    assert not missing, f"{len(missing)} EMG samples in the MCAP but not the .bio: {missing[:10]}"
    assert not (mcap_frames - bio_frames), sorted(mcap_frames - bio_frames)[:10]
    for index in list(mcap_emg)[::97]:
        np.testing.assert_array_equal(bio_emg[index], mcap_emg[index])
    # What each kept, printed for the report (not asserted: load decides the MCAP's losses).
    print(f"EMG samples: .bio {len(bio_emg)}, MCAP {len(mcap_emg)} of 14000; marker frames: "
          f".bio {len(bio_frames)}, MCAP {len(mcap_frames)} of 700; load average "
          f"{os.getloadavg()[0]:.1f}")
