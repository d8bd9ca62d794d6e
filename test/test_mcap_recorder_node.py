"""mcap_recorder in its own process: a recording of the published topics, read back with the
mcap reader and mcap_ros2's decoder (not rclpy's serializer that wrote the bytes), has every
message with the right types, stamps and values; start/stop work at run time."""
import time

import numpy as np
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
import pytest
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from biosig_ros.msg import MarkerResiduals, MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.ros.conversions import chunk_to_msg, frame_to_msg, seconds_to_time
from biosig_ros.signals import MarkerFrame, SignalChunk
from biosig_ros.srv import StartRecording
from ros_harness import NodeProcess, RosProbe

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

T0 = 1_700_000_000.0
TOPICS = {"/emg/raw": "biosig_ros/msg/SignalChunk", "/markers": "biosig_ros/msg/MarkerSet",
          "/ik/joint_states": "sensor_msgs/msg/JointState",
          "/ik/marker_residuals": "biosig_ros/msg/MarkerResiduals"}
N = 40


def test_a_recording_of_the_published_topics_reads_back_exactly(tmp_path):
    params = {"topics": list(TOPICS), "record_directory": str(tmp_path), "flush_period": 0.2,
              "record_on_start": True, "record_path": "session", "max_file_bytes": 0}
    with RosProbe("mcap_test_probe") as probe, \
            NodeProcess("biosig_ros.nodes.mcap_recorder_node", "mcap_recorder", params) as node:
        publishers = {topic: probe.publisher(cls, topic) for topic, cls in (
            ("/emg/raw", SignalChunkMsg), ("/markers", MarkerSet),
            ("/ik/joint_states", JointState), ("/ik/marker_residuals", MarkerResiduals))}
        for topic in TOPICS:
            assert node.wait_for_output(f"recording {topic} ("), node.output()
        for publisher in publishers.values():
            assert probe.wait_for_subscribers(publisher)
        time.sleep(0.5)
        rng = np.random.default_rng(3)
        sent = {topic: [] for topic in TOPICS}
        for i in range(N):
            stamp = T0 + i / 100
            emg = rng.normal(size=(20, 2))
            publishers["/emg/raw"].publish(chunk_to_msg(
                SignalChunk(emg, 20 * i, stamp, 2000.0, ["a", "b"], "V")))
            sent["/emg/raw"].append((stamp, emg.ravel()))
            positions = rng.normal(size=(3, 3))
            publishers["/markers"].publish(frame_to_msg(
                MarkerFrame(positions, ["m0", "m1", "m2"], i, stamp, 100.0, "s")))
            sent["/markers"].append((stamp, positions[:, 0]))
            q = rng.normal(size=4)
            state = JointState(name=["q0", "q1", "q2", "q3"], position=q.tolist())
            state.header.stamp = seconds_to_time(stamp)
            publishers["/ik/joint_states"].publish(state)
            sent["/ik/joint_states"].append((stamp, q))
            residuals = MarkerResiduals(frame_number=i + 7, marker_names=["m0"], residuals=[0.001 * i])
            residuals.header.stamp = seconds_to_time(stamp)
            publishers["/ik/marker_residuals"].publish(residuals)
            sent["/ik/marker_residuals"].append((stamp, [i + 7]))
            time.sleep(0.005)
        time.sleep(1.0)
        response = probe.call(Trigger, "/mcap_recorder/stop_recording", Trigger.Request())
        assert response.success, response.message
        assert f"{4 * N} messages" in response.message, response.message
        # Runtime start again, and a refused one.
        again = probe.call(StartRecording, "/mcap_recorder/start_recording",
                           StartRecording.Request(path="session"))
        assert not again.success and "exists" in again.message
        second = probe.call(StartRecording, "/mcap_recorder/start_recording",
                            StartRecording.Request(path="second.mcap"))
        assert second.success and second.path == str(tmp_path / "second.mcap")
    assert node.process.returncode == 0, node.output()

    received = {topic: [] for topic in TOPICS}
    with open(tmp_path / "session.mcap", "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, message, ros in reader.iter_decoded_messages():
            assert schema.name == TOPICS[channel.topic] and schema.encoding == "ros2msg"
            assert channel.message_encoding == "cdr"
            stamp = ros.header.stamp.sec + ros.header.stamp.nanosec * 1e-9
            values = {"/emg/raw": lambda m: m.data, "/markers": lambda m: [p.x for p in m.positions],
                      "/ik/joint_states": lambda m: m.position,
                      "/ik/marker_residuals": lambda m: [m.frame_number]}[channel.topic](ros)
            received[channel.topic].append((stamp, np.asarray(values, dtype=float)))
    for topic in TOPICS:
        assert len(received[topic]) == N, (topic, len(received[topic]))
        for (sent_stamp, sent_values), (stamp, values) in zip(sent[topic], received[topic]):
            assert abs(stamp - sent_stamp) < 1e-6
            np.testing.assert_array_equal(values, np.asarray(sent_values, dtype=float))
    assert (tmp_path / "second.mcap").stat().st_size > 0   # closed on shutdown with its summary
