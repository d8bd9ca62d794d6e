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
"""
from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from biosig_ros.bridge.legacy_protocol import DATA_KEYS
from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import BioWriter, bio_path


@dataclass
class RecorderSettings:
    """Where and how often the bridge records."""

    record_directory: str = field(default="out/recordings", metadata={
        "doc": "directory of recordings; relative paths are from the working directory"})
    record_path: str = field(default="", metadata={
        "doc": "file to record to (relative: inside record_directory); '' = a timestamped "
               "name streamed_data_YYYYmmdd_HHMMSS.bio"})
    save_frequency: float = field(default=10.0, metadata={
        "doc": "records written per second (a crash loses at most 1/save_frequency s)"})
    record_fsync: bool = field(default=False, metadata={
        "doc": "fsync every record (survives a power cut, not only a process crash)"})

    def __post_init__(self):
        if not self.save_frequency > 0 or self.save_frequency > 1000:
            raise ConfigError(f"parameter 'save_frequency' must be in (0, 1000] Hz, "
                              f"got {self.save_frequency}")
        if self.record_path:
            bio_path(self.record_path)  # raises ConfigError for a foreign suffix


class RecorderError(RuntimeError):
    """Start/stop requested in the wrong state."""


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


class BioRecorder:
    """Collects samples with add() from any thread; a writer thread appends the records."""

    def __init__(self, layout: dict[str, int], settings: RecorderSettings, clock=time.time):
        """layout: key -> number of sources of that key (keys with 0 sources are not recorded)."""
        self.settings = settings
        self._clock = clock
        self._layout = {key: n for key, n in layout.items() if n > 0}
        self._lock = threading.Lock()          # guards _sources
        self._write_lock = threading.Lock()    # one record written at a time
        self._sources = {key: [_Source() for _ in range(n)] for key, n in self._layout.items()}
        self._writer: BioWriter | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._saving_time = 0.0
        self.path: Path | None = None
        self.started_at = 0.0
        self.samples_recorded = 0
        self.records_written = 0    # by the current (or last) recording
        self.write_errors = 0
        self.last_error = ""

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def resolve_path(self, path: str = "") -> Path:
        """The file a start(path) would write: path, else record_path, else a timestamped name
        (biosiglive's streamed_data_YYYYmmdd_HHMMSS.bio); relative ones inside record_directory."""
        name = path or self.settings.record_path
        timestamped = not name
        if timestamped:
            name = time.strftime("streamed_data_%Y%m%d_%H%M%S", time.localtime(self._clock()))
        candidate = Path(name).expanduser()
        if not candidate.is_absolute():
            candidate = Path(self.settings.record_directory).expanduser() / candidate
        candidate = bio_path(candidate)
        if timestamped:
            stem, counter = candidate.with_suffix(""), 1
            while candidate.exists():
                candidate = bio_path(f"{stem}_{counter}")
                counter += 1
        return candidate

    def start(self, path: str = "") -> Path:
        """Open the file (appending if it exists, after cutting a torn tail) and start writing."""
        if self.recording:
            raise RecorderError(f"already recording to {self.path}")
        target = self.resolve_path(path)
        try:
            writer = BioWriter(target, fsync=self.settings.record_fsync)
        except OSError as error:
            raise ConfigError(f"cannot record to {target}: {error.strerror or error}") from None
        with self._lock:
            for sources in self._sources.values():
                for source in sources:
                    source.chunks.clear()
        self._writer, self.path = writer, target
        self.started_at = self._clock()
        self.samples_recorded = 0
        self.records_written = 0
        self._saving_time = 0.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bio_recorder", daemon=True)
        self._thread.start()
        return target

    def stop(self) -> Path:
        """Write what is pending, close the file and return its path."""
        if not self.recording:
            raise RecorderError("not recording")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()
        writer, self._writer = self._writer, None
        writer.close()
        return self.path

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

    def _run(self) -> None:
        period = 1.0 / self.settings.save_frequency
        while not self._stop.wait(period):
            self.flush()

    def flush(self) -> bool:
        """Append one record with everything queued since the previous one; False when there
        was nothing new (no empty records are written)."""
        with self._write_lock:
            writer = self._writer
            if writer is None:
                return False
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
            try:
                writer.append(record)
            except OSError as error:
                self.write_errors += 1
                self.last_error = f"writing {self.path}: {error.strerror or error}"
                return False
            self._saving_time = time.perf_counter() - tic_save
            self.records_written += 1
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
