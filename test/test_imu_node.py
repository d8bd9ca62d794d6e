"""imu_processing_node across processes: a probe publishes Trigno-style emg/aux chunks (two
sensors, acc/gyro/mag axes), reads imu/processed and /diagnostics."""
from __future__ import annotations

import numpy as np
from biosiglive import RealTimeProcessing
from diagnostic_msgs.msg import DiagnosticArray
import pytest
from ros_harness import NodeProcess, RosProbe

from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.processing.imu_processing import ImuProcessingSettings, StreamingImu
from biosig_ros.ros.conversions import chunk_to_msg, msg_to_chunk
from biosig_ros.signals import SignalChunk

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

MODULE = "biosig_ros.nodes.imu_processing_node"
NAME = "imu_processing"
RATE = 148.148
NAMES = [f"{s}_{c}_{a}" for s in ("deltoid", "biceps") for c in ("acc", "gyro", "mag")
         for a in "xyz"]


def aux(samples: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.normal(0.0, 1.0, (samples, len(NAMES))) + 9.81 * np.isin(
        np.arange(len(NAMES)), [2, 11])


def run(params: dict, data: np.ndarray, skip=(), size: int = 2, silent: int = 0):
    """Publish data in chunks (all but those in skip; the first `silent` give no output);
    returns (outputs, diagnostics, node log)."""
    with NodeProcess(MODULE, NAME, params) as node, RosProbe() as probe:
        outputs = probe.subscribe(SignalChunkMsg, "/imu/processed")
        diagnostics = probe.subscribe(DiagnosticArray, "/diagnostics")
        publisher = probe.publisher(SignalChunkMsg, "/emg/aux")
        assert probe.wait_for_subscribers(publisher, timeout=90), node.output()  # busy machine
        assert probe.wait_until(lambda: len(diagnostics) > 0, 30), node.output()
        sent = 0
        for k, a in enumerate(range(0, len(data), size)):
            if k in skip:
                continue
            publisher.publish(chunk_to_msg(SignalChunk(
                data[a:a + size], a, 1_750_000_000.0 + a / RATE, RATE, NAMES,
                "m/s^2,rad/s,T")))
            sent += 1
            probe.wait_until(lambda: len(outputs) >= sent - silent - 8, 20)
            if k % 10 == 0:
                probe.wait_until(lambda: False, 0.02)
        probe.wait_until(lambda: False, 2.5)  # the last diagnostics
        statuses = [{kv.key: kv.value for kv in s.values} | {"message": s.message}
                    for _, array in list(diagnostics) for s in array.status if s.name == NAME]
        return [msg_to_chunk(m) for _, m in outputs], statuses, node.output()


def test_streaming_node_matches_the_core_and_reports_a_gap():
    data = aux(400)
    params = {"sensor": "acc", "squared": True, "window_s": 0.1}
    outputs, statuses, log = run(params, data, skip={50})
    local = StreamingImu(RATE, 2, ImuProcessingSettings(**params))
    expected = [local.process(data[a:a + 2][:, [0, 1, 2, 9, 10, 11]])
                for a in range(0, 400, 2) if a != 100]
    assert len(outputs) == len(expected), log
    for out, values in zip(outputs, expected):
        assert out.channel_names == ["deltoid_acc_norm", "biceps_acc_norm"]
        assert out.unit == "m/s^2" and out.sample_rate == RATE
        assert np.array_equal(out.data, values)
    assert [o.first_sample_index for o in outputs] == [a for a in range(0, 400, 2) if a != 100]
    assert any(s["message"].startswith("2 lost in the last 10 s (missing samples)")
               for s in statuses), statuses
    assert "emg/aux layout: 2 IMU(s) [deltoid, biceps], acc at 148.148 Hz" in log


def test_biosiglive_mode_node_matches_process_imu():
    data = aux(300)
    params = {"mode": "biosiglive", "sensor": "gyro", "processing_window": 40}
    outputs, _, log = run(params, data, silent=20)
    reference = RealTimeProcessing(RATE, 40)
    expected = []
    for a in range(0, 300, 2):
        gyro = data[a:a + 2][:, [3, 4, 5, 12, 13, 14]].T.reshape(2, 3, 2)
        out = reference.process_imu(gyro.copy())
        if a >= 40:  # biosiglive's zeros while its window fills are not published
            expected.append(out[:, :, -1].reshape(-1))
    assert len(outputs) == len(expected), log
    for out, values in zip(outputs, expected):
        assert out.sample_count == 1 and np.array_equal(out.data[0], values)


def test_invalid_configuration_exits_2():
    node = NodeProcess(MODULE, NAME, {"norm_max_bound": 2.0})
    assert node.process.wait(timeout=120) == 2, node.output()
    assert "configuration error: parameters 'norm_min_bound' and 'norm_max_bound' go " \
           "together" in node.output()
