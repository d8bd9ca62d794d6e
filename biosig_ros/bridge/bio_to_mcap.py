"""A bridge `.bio` recording -> MCAP (`bio_convert REC.bio -o REC.mcap`), without ROS.

The topics are the ones the bridge recorded (`sources[key][i]["topic"]`), with the package's
message types, CDR-encoded by mcap_ros2 from the message definitions (docs/mcap.md):
- raw_device_data / proc_device_data -> biosig_ros/msg/SignalChunk, one per run of contiguous
  sample indices within a record (a jump in the recorded index starts a new chunk);
- marker_set_data -> biosig_ros/msg/MarkerSet per frame, back in metres (÷ the recorded unit:
  mm, m), zeros (Vicon's occluded markers) as NaN with occluded true;
- kinematics_data -> sensor_msgs/msg/JointState per frame (positions).
Stamps (header, log and publish time) are the recorded capture times. StreamData recordings
and plain dicts have no per-sample times: convert those to .c3d instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from mcap_ros2._dynamic import serialize_dynamic

from biosig_ros.bridge.legacy_protocol import DATA_KEYS
from biosig_ros.bridge.mcap_schema import message_definition
from biosig_ros.bridge.mcap_writer import McapFile
from biosig_ros.errors import ConfigError

SIGNAL, MARKERS, JOINTS = ("biosig_ros/msg/SignalChunk", "biosig_ros/msg/MarkerSet",
                           "sensor_msgs/msg/JointState")
TYPES = {"raw_device_data": SIGNAL, "proc_device_data": SIGNAL, "marker_set_data": MARKERS,
         "kinematics_data": JOINTS}
DEFAULT_TOPICS = {"raw_device_data": "/emg/raw", "proc_device_data": "/emg/envelope",
                  "marker_set_data": "/markers", "kinematics_data": "/ik/joint_states"}
_UNIT_SCALE = {"mm": 1000.0, "m": 1.0}


def _header(stamp: float, frame_id: str = "") -> tuple[dict, int]:
    ns = int(round(stamp * 1e9))
    return {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000},
            "frame_id": frame_id}, ns


def _messages(key: str, info: dict, data: np.ndarray, times: np.ndarray, indices: np.ndarray):
    """(header stamp ns, message dict) for one record of one source."""
    names = list(info.get("names") or [])
    if key in ("raw_device_data", "proc_device_data"):
        breaks = np.flatnonzero(np.diff(indices) != 1) + 1
        for run in np.split(np.arange(indices.size), breaks):
            if not run.size:
                continue
            header, ns = _header(float(times[run[0]]))
            block = data[:, run]
            yield ns, {"header": header, "channel_names": names or [
                f"ch{c}" for c in range(block.shape[0])], "unit": info.get("unit") or "",
                "sample_rate": float(info.get("rate") or 0.0),
                "first_sample_index": int(indices[run[0]]), "sample_count": int(run.size),
                "data": block.T.ravel().tolist()}
    elif key == "marker_set_data":
        scale = _UNIT_SCALE.get(info.get("unit") or "mm", 1.0)
        for f in range(indices.size):
            header, ns = _header(float(times[f]), "world")
            positions = data[:, :, f] / scale
            occluded = np.all(positions == 0, axis=0) | np.any(np.isnan(positions), axis=0)
            yield ns, {"header": header, "subject": "", "frame_number": int(indices[f]),
                       "frame_rate": float(info.get("rate") or 0.0),
                       "marker_names": names or [f"M{m}" for m in range(positions.shape[1])],
                       "positions": [{"x": float("nan"), "y": float("nan"), "z": float("nan")}
                                     if hidden else {"x": float(p[0]), "y": float(p[1]),
                                                     "z": float(p[2])}
                                     for p, hidden in zip(positions.T, occluded)],
                       "occluded": occluded.tolist()}
    else:
        for f in range(indices.size):
            header, ns = _header(float(times[f]))
            yield ns, {"header": header, "name": names, "position": data[:, f].tolist(),
                       "velocity": [], "effort": []}


def bio_to_mcap(records: list[dict], target: Path) -> int:
    """Write the records of a bridge recording to target; returns the number of messages."""
    if not any(f"{key}_time" in record and "sources" in record
               for record in records for key in DATA_KEYS):
        raise ConfigError("MCAP conversion needs a biosig_ros bridge recording (per-sample "
                          "times and sources); convert this file to .c3d instead")
    encoders = {t: serialize_dynamic(t, message_definition(t))[t] for t in set(TYPES.values())}
    target.parent.mkdir(parents=True, exist_ok=True)
    out = McapFile(target)
    count = 0
    try:
        for record in records:
            sources = record.get("sources", {})
            for key in DATA_KEYS:
                if f"{key}_time" not in record:
                    continue
                for j, (data, times, indices) in enumerate(zip(
                        record[key], record[f"{key}_time"], record[f"{key}_index"])):
                    infos = sources.get(key) or []
                    info = infos[j] if j < len(infos) else {}
                    topic = info.get("topic") or DEFAULT_TOPICS[key]
                    for ns, message in _messages(key, info, np.asarray(data, dtype=float),
                                                 np.asarray(times), np.asarray(indices)):
                        out.write(topic, TYPES[key], encoders[TYPES[key]](message), ns, ns)
                        count += 1
    finally:
        out.close()
    return count
