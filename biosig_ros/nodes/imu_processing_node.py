"""imu_processing_node: emg/aux (SignalChunk: each Trigno sensor's acc/gyro/mag axes) ->
imu/processed (SignalChunk: each IMU's processed x, y, z of one sensor kind, or its norm).

The node translates topics and parameters; the processing is
biosig_ros.processing.imu_processor.ImuProcessor (mode streaming: stateful filters at the aux
rate, every sample; mode biosiglive: RealTimeProcessing.process_imu bit for bit, one value per
chunk). The IMUs and their axes are learned from the channel names (`<imu>_acc_x`, ...).
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from rclpy.node import Node

from biosig_ros.msg import SignalChunk as SignalChunkMsg
from biosig_ros.processing.imu_processing import ImuProcessingSettings
from biosig_ros.processing.imu_processor import ImuProcessor
from biosig_ros.ros.conversions import chunk_to_msg, msg_to_chunk
from biosig_ros.ros.diagnostics import OK, STALE, WARN, Diagnostics, loss_window
from biosig_ros.ros.node_context import node_seconds
from biosig_ros.ros.node_runner import main_for
from biosig_ros.ros.node_setup import setup_or_destroy
from biosig_ros.ros.parameters import declare_settings
from biosig_ros.ros.qos import input_qos, output_qos


class ImuProcessingNode(Node):
    """Aux chunks in, processed IMU chunks out."""

    def __init__(self):
        super().__init__("imu_processing")
        setup_or_destroy(self, self._setup)

    def _setup(self) -> None:
        self.settings = s = declare_settings(self, ImuProcessingSettings)
        self._processor = ImuProcessor(s, notify=self._notify, clock=node_seconds(self))
        self._losses = loss_window(self, s.loss_window_s)
        self._times: deque[float] = deque(maxlen=2000)
        self._published = 0
        self._publisher = self.create_publisher(SignalChunkMsg, "imu/processed",
                                                output_qos())
        self._diagnostics = Diagnostics(self, hardware_id="imu")
        self._diagnostics.set(STALE, "waiting for emg/aux", mode=s.mode, sensor=s.sensor)
        self.create_subscription(SignalChunkMsg, "emg/aux", self._on_aux, input_qos())
        self.create_timer(1.0, self._update_diagnostics)
        self.get_logger().info(
            f"ready: mode {s.mode}, sensor {s.sensor}, {'norm' if s.squared else 'x, y, z'}"
            f"{', normalised' if s.normalised else ''}; emg/aux -> imu/processed")

    def _notify(self, level: str, text: str) -> None:
        if level == "warning":  # one call site per severity (rclpy requires it)
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _on_aux(self, msg: SignalChunkMsg) -> None:
        start = time.perf_counter()
        p = self._processor
        try:
            result = p.step(msg_to_chunk(msg))
        except ValueError as error:  # data and channel names that do not fit together
            p.refused += 1
            p.last_error = f"chunk {msg.first_sample_index} refused: {error}"
            result = None
        if result is not None and result.output is not None:
            self._publisher.publish(chunk_to_msg(result.output, msg.header.frame_id))
            self._published += 1
        if result is not None:
            self._losses.record(result.missing, "missing samples")
            self._losses.record(int(result.late) * int(msg.sample_count), "late chunks")
        if result is None or result.refused:
            self._losses.record(max(1, int(msg.sample_count)), "refused chunks")
            self.get_logger().error(p.last_error, throttle_duration_sec=5.0)
        self._times.append(time.perf_counter() - start)

    def _update_diagnostics(self) -> None:
        p = self._processor
        continuity = p.continuity
        times = np.array(self._times) * 1e6 if self._times else np.zeros(1)
        values = dict(imus=len(p.imus), layout_changes=p.layout_changes,
                      refused_chunks=p.refused, published_chunks=self._published,
                      lost_in_window=self._losses.summary()[0],
                      processing_p50_us=float(np.percentile(times, 50)))
        if continuity is None:
            level, message = (STALE, "waiting for emg/aux") if not p.refused else \
                (WARN, p.last_error)
            self._diagnostics.set(level, message, **values)
            return
        stats = continuity.stats
        values.update(input_rate_hz=stats.rate(), chunks=stats.messages,
                      missing_samples=continuity.missing_total, gaps=continuity.gaps_total,
                      late_chunks=continuity.late, restarts=continuity.restarts)
        silence = stats.seconds_since_last()
        losses = self._losses.message()
        if silence is not None and silence > 1.0:
            level, message = WARN, f"no emg/aux for {silence:.1f} s"
        elif losses:
            level, message = WARN, losses + (f"; last refused: {p.last_error}"
                                             if "refused" in losses else "")
        else:
            level, message = OK, "processing"
        self._diagnostics.set(level, message, **values)


def main() -> None:
    main_for(ImuProcessingNode, "imu_processing_node")


if __name__ == "__main__":
    main()
