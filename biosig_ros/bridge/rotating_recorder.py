"""The life of a recording, shared by the `.bio` and MCAP recorders: one writer thread that
flushes what was queued every period, rotates to a new part past the size or duration limit,
and stops the recording (one ERROR through on_error) when the disk runs low or a write fails
for good. Data keeps arriving and being served meanwhile: only the recording stops.

A subclass says how to open a part, write what is pending, close a part and drop the queue.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from biosig_ros.bridge import record_files
from biosig_ros.bridge.record_files import RecordFileSettings, RecordTarget


class RecorderError(RuntimeError):
    """Start/stop requested in the wrong state."""


class RotatingRecorder:
    suffix = ".bio"
    prefix = "streamed_data"

    def __init__(self, files: RecordFileSettings, period: float, clock=time.time,
                 free=record_files.free_bytes, on_error: Callable[[str], None] | None = None):
        self.files = files
        self.period = period
        self._clock = clock
        self._free = free
        self.on_error = on_error
        self._write_lock = threading.Lock()   # one flush (or rotation) at a time
        self._writer = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._target: RecordTarget | None = None
        self.path: Path | None = None          # the part being written (or the last one)
        self.parts: list[Path] = []
        self.started_at = 0.0
        self.part_started_at = 0.0
        self.records_written = 0               # by the current (or last) recording
        self.write_errors = 0
        self.last_error = ""
        self.stopped_by = ""                   # why the recording stopped by itself

    # --- what a subclass provides ---------------------------------------------------------
    def _open_part(self, path: Path):
        raise NotImplementedError

    def _write_pending(self, writer) -> bool:
        """Write what was queued; False when there was nothing. OSError on a failed write."""
        raise NotImplementedError

    def _close_part(self, writer) -> None:
        raise NotImplementedError

    def _part_bytes(self, writer) -> int:
        raise NotImplementedError

    def _discard_pending(self) -> None:
        raise NotImplementedError

    # --- life cycle -----------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._writer is not None

    @property
    def directory(self) -> Path:
        return record_files.record_root(self.files.record_directory)

    def start(self, name: str = "") -> Path:
        """Plan the files (PathRefused says why not), check the disk and open the first part."""
        if self.recording:
            raise RecorderError(f"already recording to {self.path}")
        target = record_files.plan(self.files, name, self.suffix, self._clock(), self.prefix)
        problem = record_files.disk_problem(self.files, self.directory, self._free)
        if problem:
            raise record_files.PathRefused(problem.replace("recording stopped", "not recording"))
        self._discard_pending()
        self._target, self.parts = target, []
        self.started_at = self._clock()
        self.records_written = 0
        self.stopped_by = ""
        self._open_next()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{type(self).__name__}",
                                        daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> Path:
        """Write what is pending, close the file and return the last part's path."""
        if not self.recording:
            raise RecorderError("not recording" + (f" ({self.stopped_by})" if self.stopped_by
                                                   else ""))
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.flush()
        with self._write_lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                self._close_part(writer)
        return self.path

    def _open_next(self) -> None:
        path = self._target.part(len(self.parts) + 1)
        record_files.create_new(path)
        self._writer = self._open_part(path)
        self.path = path
        self.parts.append(path)
        self.part_started_at = self._clock()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.flush()

    def flush(self) -> bool:
        """Check the disk, write what is queued, rotate when a limit is reached."""
        with self._write_lock:
            writer = self._writer
            if writer is None:
                return False
            problem = record_files.disk_problem(self.files, self.directory, self._free)
            if problem:
                self._halt(problem)
                return False
            try:
                wrote = self._write_pending(writer)
            except OSError as error:
                self.write_errors += 1
                self.last_error = f"writing {self.path}: {error.strerror or error}"
                return False
            if wrote:
                self.records_written += 1
                self._rotate_if_due(writer)
            return wrote

    def _rotate_if_due(self, writer) -> None:
        files = self.files
        full = files.max_file_bytes and self._part_bytes(writer) >= files.max_file_bytes
        old = files.max_file_seconds and (
            self._clock() - self.part_started_at >= files.max_file_seconds)
        if not (full or old):
            return
        self._close_part(writer)
        try:
            self._open_next()
        except Exception as error:  # noqa: BLE001 - any failure to open ends the recording
            self._writer = None
            self._halt(f"recording stopped: cannot open part {len(self.parts) + 1}: {error}")

    def _halt(self, message: str) -> None:
        """Stop recording from the writer thread: close the part, say why once."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                self._close_part(writer)
            except OSError:
                pass
        self._stop.set()
        self._discard_pending()
        self.stopped_by = self.last_error = message
        if self.on_error is not None:
            self.on_error(message)
