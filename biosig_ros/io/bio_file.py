"""The biosiglive `.bio` file: a sequence of pickled dicts, merged key by key on load.

Reading never executes code from the file (NumpyDataUnpickler) and survives a torn last
record: the records before it are returned and the tear is reported. BioWriter appends whole
records, flushes them, and on opening an existing file cuts a torn tail left by a crash, so
the file stays readable by biosiglive.load.
"""
from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from biosig_ros.errors import ConfigError
from biosig_ros.io.pickle_compat import NumpyDataUnpickler, dumps_portable

BIO_SUFFIX = ".bio"
# biosiglive's save() writes HIGHEST (5); load() reads any protocol. Protocol 4 arrays name only
# numpy.core.multiarray._reconstruct, which NumPy 1.x and 2.x load without the deprecation
# warning that protocol 5's numpy.core.numeric._frombuffer raises on NumPy 2.
RECORD_PROTOCOL = 4


@dataclass
class BioContent:
    records: list[dict]
    valid_bytes: int        # length of the readable prefix of the file
    torn_tail: bool         # True when bytes after valid_bytes could not be read


def bio_path(path: str | os.PathLike) -> Path:
    """biosiglive's naming rule: no suffix -> .bio; another suffix is an error."""
    path = Path(path)
    if path.suffix == "":
        return path.with_suffix(BIO_SUFFIX)
    if path.suffix != BIO_SUFFIX:
        raise ConfigError(f"{path}: a biosiglive recording must end in {BIO_SUFFIX}")
    return path


def read_bio_records(path: str | os.PathLike, max_records: int | None = None) -> BioContent:
    """Read the dicts stored in a .bio file, in order, stopping at a torn or foreign tail."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such .bio file")
    raw = path.read_bytes()
    stream = io.BytesIO(raw)
    records: list[dict] = []
    valid = 0
    while valid < len(raw) and (max_records is None or len(records) < max_records):
        try:
            record = NumpyDataUnpickler(stream).load()
        except pickle.UnpicklingError as error:
            if "refused" in str(error):
                raise ConfigError(f"{path}: record {len(records)} is not plain data: {error}")
            break
        except (EOFError, ValueError, IndexError, TypeError, KeyError, AttributeError,
                ImportError, MemoryError, OverflowError):
            break
        if not isinstance(record, dict):
            raise ConfigError(f"{path}: record {len(records)} is a {type(record).__name__}, "
                              "not a dict: not a biosiglive .bio file")
        records.append(record)
        valid = stream.tell()
    if not records and raw:
        raise ConfigError(f"{path}: not a biosiglive .bio file (no readable record)")
    torn = valid < len(raw) and (max_records is None or len(records) < max_records)
    return BioContent(records, valid, torn)


def merge_records(records: list[dict]) -> dict:
    """biosiglive.load's merge: arrays concatenate along their last axis, other values become a
    list with one entry per record (a key may first appear in a later record)."""
    merged: dict = {}
    for record in records:
        for key, value in record.items():
            if key not in merged:
                merged[key] = value if isinstance(value, np.ndarray) else [value]
            elif isinstance(value, np.ndarray) and isinstance(merged[key], np.ndarray):
                merged[key] = np.append(merged[key], value, axis=-1)
            elif isinstance(merged[key], list):
                merged[key].append(value)
            else:
                merged[key] = [merged[key], value]
    return merged


def load_bio(path: str | os.PathLike, max_records: int | None = None) -> dict:
    """Load a .bio file like biosiglive.load, but safely and keeping what precedes a tear."""
    return merge_records(read_bio_records(path, max_records).records)


class BioWriter:
    """Appends records to a .bio file; each record is written whole and flushed (optionally
    fsynced), so a crash loses at most the record being written, and a failed write (disk
    full) is cut off again so that later records stay readable."""

    def __init__(self, path: str | os.PathLike, fsync: bool = False):
        self.path = bio_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = 0
        if self.path.exists() and self.path.stat().st_size > 0:
            content = read_bio_records(self.path)
            if content.torn_tail:
                self.repaired_bytes = self.path.stat().st_size - content.valid_bytes
                os.truncate(self.path, content.valid_bytes)
        # Unbuffered: every append reaches the kernel before append() returns.
        self._file = open(self.path, "ab", buffering=0)
        self._size = self._file.seek(0, os.SEEK_END)  # end of the last whole record
        self._fsync = fsync
        self.records_written = 0

    def append(self, record: dict) -> None:
        # The whole pickle in as few write() calls as the kernel allows: a kill leaves either
        # the record or a torn tail that the next BioWriter (or read_bio_records) cuts off.
        data = memoryview(dumps_portable(record, protocol=RECORD_PROTOCOL))
        try:
            while data:
                data = data[self._file.write(data):]
            if self._fsync:
                os.fsync(self._file.fileno())
        except OSError:
            try:
                os.ftruncate(self._file.fileno(), self._size)
            except OSError:
                pass
            raise
        self._size = self._file.tell()
        self.records_written += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
