"""Recording of the bridge's sources to a biosiglive `.bio` file, from its own thread.

Every 1/save_frequency s the recorder appends one record (a dict, one pickle, flushed) with
what arrived since the previous record, so a crash (kill -9) loses at most one save interval
and the file stays readable by biosiglive.load. Record layout, like biosiglive's StreamData:
- "proc_device_data", "raw_device_data", "kinematics_data", "marker_set_data": a list with one
  array per device / marker set, samples on the last axis (channels x n, nq x n, 3 x markers x
  n), in the units the server serves (markers in millimetres by default);
- "<key>_time" (POSIX seconds of each sample) and "<key>_index" (running sample or frame index
  of each sample): a list with one 1-D array per source, aligned with the data;
- StreamData's bookkeeping: "absolute_time_frame" {day, hour, hour_s, minute, minute_s, second,
  millisecond, millisecond_s}, "interface_latency" (-1.0: not known at the bridge),
  "process_time", "initial_time", "time_to_get_data", "saving_time" (floats), plus
  "record_time" (POSIX seconds of the write) and "sources" {key: [{"topic", "names", "rate",
  "unit"} per source]} (what bio_convert needs to label channels and markers).
Unlike StreamData, nothing is dropped between saves and each record holds only NEW samples
(StreamData saves one loop's data per save and the whole last-second window of processed EMG
and kinematics in every record), so concatenating the records along the last axis gives the
continuous signals.

Files, rotation and the disk guard are rotating_recorder's (see record_files): each part is a
complete `.bio` file whose records hold that part's samples only.
"""
from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biosig_ros.bridge.legacy_protocol import DATA_KEYS
from biosig_ros.bridge.record_files import RecordFileSettings
from biosig_ros.bridge.rotating_recorder import RecorderError, RotatingRecorder
from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import BioWriter, bio_path
from biosig_ros.settings import doc_field

__all__ = ["BioRecorder", "RecorderError", "RecorderSettings"]


@dataclass
class RecorderSettings(RecordFileSettings):
    """Where and how often the bridge records."""

    save_frequency: float = doc_field(
        10.0, "records written per second (a crash loses at most 1/save_frequency s)",
        range=(0.01, 1000.0))
    record_fsync: bool = doc_field(
        False, "fsync every record (survives a power cut, not only a process crash)")

    def __post_init__(self):
        super().__post_init__()
        if not self.save_frequency > 0 or self.save_frequency > 1000:
            raise ConfigError(f"parameter 'save_frequency' must be in (0, 1000] Hz, "
                              f"got {self.save_frequency}")
        if self.record_path:
            bio_path(self.record_path)  # raises ConfigError for a foreign suffix


@dataclass
class _Source:
    chunks: list = field(default_factory=list)   # (data, times, indices) since the last record
    lead_shape: tuple | None = None               # leading dims of the last data seen
    info: dict = field(default_factory=dict)      # topic, names, rate, unit


def _time_dict(now: float) -> dict:
    moment = datetime.datetime.fromtimestamp(now)
    millisecond = int(moment.microsecond / 1000)
    return {"day": moment.day, "hour": moment.hour, "hour_s": moment.hour * 3600,
            "minute": moment.minute, "minute_s": moment.minute * 60, "second": moment.second,
            "millisecond": millisecond, "millisecond_s": millisecond * 0.001}


class BioRecorder(RotatingRecorder):
    """Collects samples with add() from any thread; a writer thread appends the records."""

    suffix = ".bio"

    def __init__(self, layout: dict[str, int], settings: RecorderSettings, clock=time.time,
                 **guard):
        """layout: key -> number of sources of that key (keys with 0 sources are not recorded);
        guard: free= and on_error= of RotatingRecorder."""
        super().__init__(settings, 1.0 / settings.save_frequency, clock, **guard)
        self.settings = settings
        self._layout = {key: n for key, n in layout.items() if n > 0}
        self._lock = threading.Lock()          # guards _sources
        self._sources = {key: [_Source() for _ in range(n)] for key, n in self._layout.items()}
        self._saving_time = 0.0
        self.samples_recorded = 0

    def start(self, path: str = "") -> Path:
        """Record to path (relative to the record directory), else record_path, else a
        timestamped name; returns the first file."""
        self.samples_recorded = 0
        self._saving_time = 0.0
        return super().start(path or self.settings.record_path)

    def _open_part(self, path: Path) -> BioWriter:
        return BioWriter(path, fsync=self.settings.record_fsync)

    def _close_part(self, writer: BioWriter) -> None:
        writer.close()

    def _part_bytes(self, writer: BioWriter) -> int:
        return writer._size

    def _discard_pending(self) -> None:
        with self._lock:
            for sources in self._sources.values():
                for source in sources:
                    source.chunks.clear()

    def describe(self, key: str, index: int, **info) -> None:
        """Set what the records say about a source (topic, names, rate, unit)."""
        if key in self._sources:
            with self._lock:
                self._sources[key][index].info = dict(info)

    def add(self, key: str, index: int, data: np.ndarray, times: np.ndarray,
            indices: np.ndarray) -> None:
        """Queue samples of source `index` of `key` (samples on the last axis of data)."""
        if self._writer is None or key not in self._sources:
            return
        with self._lock:
            source = self._sources[key][index]
            source.chunks.append((data, times, indices))
            source.lead_shape = data.shape[:-1]

    def _write_pending(self, writer: BioWriter) -> bool:
        """Append one record with everything queued since the previous one; False when there
        was nothing new (no empty records are written)."""
        tic = time.perf_counter()
        with self._lock:
            taken = {key: [(s.chunks, s.lead_shape) for s in sources]
                     for key, sources in self._sources.items()}
            infos = {key: [dict(s.info) for s in sources]
                     for key, sources in self._sources.items()}
            for sources in self._sources.values():
                for source in sources:
                    source.chunks = []
        time_to_get = time.perf_counter() - tic
        record = self._build_record(taken)
        if record is None:
            return False
        record["process_time"] = time.perf_counter() - tic - time_to_get
        now = self._clock()
        record.update({
            "absolute_time_frame": _time_dict(now), "interface_latency": -1.0,
            "initial_time": 0.0, "time_to_get_data": time_to_get,
            "saving_time": self._saving_time, "record_time": now, "sources": infos})
        tic_save = time.perf_counter()
        writer.append(record)
        self._saving_time = time.perf_counter() - tic_save
        return True

    def _build_record(self, taken: dict) -> dict | None:
        record: dict = {}
        new_samples = 0
        for key in [k for k in DATA_KEYS if k in taken] + [k for k in taken if k not in DATA_KEYS]:
            sources = taken[key]
            if all(lead is None for _, lead in sources):
                continue  # no source of this key has produced anything yet
            arrays, times, indices = [], [], []
            for chunks, lead in sources:
                if chunks:
                    arrays.append(np.concatenate([c[0] for c in chunks], axis=-1))
                    times.append(np.concatenate([c[1] for c in chunks]).astype(np.float64))
                    indices.append(np.concatenate([c[2] for c in chunks]).astype(np.int64))
                    new_samples += arrays[-1].shape[-1]
                else:
                    empty_lead = lead if lead is not None else (
                        (3, 0) if key == "marker_set_data" else (0,))
                    arrays.append(np.zeros(tuple(empty_lead) + (0,)))
                    times.append(np.zeros(0))
                    indices.append(np.zeros(0, dtype=np.int64))
            record[key] = arrays
            record[f"{key}_time"] = times
            record[f"{key}_index"] = indices
        if new_samples == 0:
            return None
        self.samples_recorded += new_samples
        return record
