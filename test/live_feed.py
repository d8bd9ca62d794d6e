"""A synthetic live graph for the live view's tests and benchmark, published from this process.

Every 1 / rate seconds: an EMG envelope and a raw EMG chunk (channels x `chunk` samples at
`sample_rate`, running indices), a MarkerSet of the Wu model's markers and the JointState of the
same pose (biorbd forward kinematics of a smooth synthetic motion). Stamps are the publication
time of the chunk's first sample / of the frame. What was sent is kept for the tests to compare
with what the live view drew or published.
"""
from __future__ import annotations

import array
import threading
import time

import numpy as np
from sensor_msgs.msg import JointState

from biosig_ros.msg import MarkerSet, SignalChunk as SignalChunkMsg
from biosig_ros.processing.ik_model import load_model
from biosig_ros.processing.ik_synthetic import synthetic_trajectory
from biosig_ros.ros.conversions import (chunk_to_msg, frame_to_msg, seconds_to_time,
                                        time_to_seconds)
from biosig_ros.signals import SignalChunk

WU = "data/Wu_Shoulder_Model_mod_wt_wrapp.bioMod"


class LiveFeed:
    """Publishes the four streams from a thread of its own through `probe` (a RosProbe)."""

    def __init__(self, probe, channels: int = 16, sample_rate: float = 2000.0,
                 rate: float = 100.0, envelope_unit: str = "V", occluded=(),
                 topics=("/emg/envelope", "/emg/raw", "/markers", "/ik/joint_states")):
        self.channels = [f"M{c + 1:02d}" for c in range(channels)]
        self.sample_rate, self.rate, self.unit = sample_rate, rate, envelope_unit
        self.chunk = int(round(sample_rate / rate))
        self.model = load_model(WU)
        self.trajectory = synthetic_trajectory(self.model, seconds=10.0, noise=0.0, seed=3)
        self.occluded = set(occluded)  # marker names always sent as occluded
        envelope_topic, raw_topic, markers_topic, joints_topic = topics
        self.publishers = {
            "envelope": probe.publisher(SignalChunkMsg, envelope_topic),
            "raw": probe.publisher(SignalChunkMsg, raw_topic),
            "markers": probe.publisher(MarkerSet, markers_topic),
            "joints": probe.publisher(JointState, joints_topic)}
        self.sent_envelope: dict[int, np.ndarray] = {}   # sample index -> values
        self.sent_stamps: dict[int, float] = {}          # sample index -> capture time
        self.sent_markers: dict[float, MarkerSet] = {}   # stamp -> message
        self.sent_joints: dict[float, np.ndarray] = {}   # stamp -> q
        self.messages = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)

    def start(self) -> "LiveFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _signal(self, values: np.ndarray, first: int, stamp, unit: str) -> SignalChunkMsg:
        chunk = SignalChunk(values, first, time_to_seconds(stamp), self.sample_rate,
                            self.channels, unit)
        return chunk_to_msg(chunk, "world", stamp)

    def _run(self) -> None:
        rng = np.random.default_rng(0)
        start = time.time()
        gains = np.linspace(0.2, 1.0, len(self.channels))
        k = 0
        while not self._stop.is_set():
            due = start + k / self.rate
            delay = due - time.time()
            if delay > 0 and self._stop.wait(delay):
                return
            first = k * self.chunk
            # the schedule's capture time, as a device's: a feed that catches up after a stall
            # sends its chunks back to back, and send-time stamps would make their samples'
            # stamps overlap
            stamp = seconds_to_time(due)
            t = (first + np.arange(self.chunk))[:, None] / self.sample_rate
            envelope = gains * (0.5 + 0.4 * np.sin(2 * np.pi * 0.5 * t + gains))
            if self.unit == "V":
                envelope = envelope * 1e-4
            raw = envelope * rng.standard_normal(envelope.shape)
            frame = self.trajectory.frame(k % len(self.trajectory.q))
            frame.stamp = time_to_seconds(stamp)
            frame.frame_number = k
            for i, name in enumerate(frame.marker_names):
                if name in self.occluded:
                    frame.occluded[i] = True
                    frame.positions[i] = np.nan
            markers = frame_to_msg(frame, "world")
            joints = JointState()
            joints.header.stamp = stamp
            joints.name = list(self.model.dof_names)
            q = self.trajectory.q[k % len(self.trajectory.q)]
            joints.position = array.array("d", q)
            with self._lock:
                for row in range(self.chunk):
                    self.sent_envelope[first + row] = envelope[row]
                    self.sent_stamps[first + row] = frame.stamp + row / self.sample_rate
                self.sent_markers[frame.stamp] = markers
                self.sent_joints[frame.stamp] = q
            self.publishers["envelope"].publish(
                self._signal(envelope, first, stamp, self.unit))
            self.publishers["raw"].publish(self._signal(raw, first, stamp, "V"))
            self.publishers["markers"].publish(markers)
            self.publishers["joints"].publish(joints)
            self.messages += 1
            k += 1

    def envelope_at(self, index: int) -> np.ndarray | None:
        with self._lock:
            return self.sent_envelope.get(index)
