"""Bounded, safe recording (#11 item 2), shared by the .bio and MCAP recorders: rotation into
complete files, a free-disk guard, no appending, paths confined to the record directory, and a
default directory that does not depend on the working directory."""
import os

import numpy as np
import pytest
from biosiglive import load

from biosig_ros.bridge import record_files
from biosig_ros.bridge.bio_recorder import BioRecorder, RecorderSettings
from biosig_ros.bridge.record_files import PathRefused, RecordFileSettings, record_root
from biosig_ros.bridge.rotating_recorder import RecorderError
from biosig_ros.errors import ConfigError

LAYOUT = {"raw_device_data": 1}
MIB = 2 ** 20


class FakeClock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def recorder(tmp_path, clock=None, free=None, errors=None, **settings):
    values = {"record_directory": str(tmp_path), "save_frequency": 0.01, **settings}
    guard = {}
    if free is not None:
        guard["free"] = free
    if errors is not None:
        guard["on_error"] = errors.append
    return BioRecorder(LAYOUT, RecorderSettings(**values), clock=clock or FakeClock(), **guard)


def feed(rec, first, count=2000):
    data = np.arange(first, first + count, dtype=float).reshape(1, count).repeat(8, axis=0)
    rec.add("raw_device_data", 0, data, np.arange(first, first + count) / 2000.0,
            np.arange(first, first + count))


def test_rotation_by_size_makes_complete_parts_biosiglive_loads(tmp_path):
    rec = recorder(tmp_path, max_file_bytes=MIB)
    first = rec.start("session")
    assert first.name == "session_part001.bio"
    for block in range(40):           # 40 records of 128 kB: about five 1 MiB parts
        feed(rec, block * 2000)
        assert rec.flush()
    rec.stop()
    parts = sorted(tmp_path.glob("session_part*.bio"))
    assert parts == rec.parts and len(parts) >= 4
    indices = []
    for part in parts:
        assert part.stat().st_size < MIB + 200_000   # at most one record past the limit
        data = load(str(part))                       # biosiglive's own loader, part by part
        indices.append(np.concatenate([r[0] for r in data["raw_device_data_index"]]))
    np.testing.assert_array_equal(np.concatenate(indices), np.arange(40 * 2000))


def test_rotation_by_duration(tmp_path):
    clock = FakeClock()
    rec = recorder(tmp_path, clock=clock, max_file_bytes=0, max_file_seconds=60.0)
    rec.start("timed")
    for second in range(0, 200, 10):
        clock.now += 10
        feed(rec, second * 200, 200)
        rec.flush()
    rec.stop()
    assert [p.name for p in rec.parts] == [f"timed_part00{i}.bio" for i in range(1, 5)]
    total = sum(np.concatenate([r[0] for r in load(str(p))["raw_device_data_index"]]).size
                for p in rec.parts)
    assert total == 20 * 200


def test_an_existing_file_is_never_appended(tmp_path):
    existing = tmp_path / "subject01.bio"
    existing.write_bytes(b"previous session")
    rec = recorder(tmp_path, max_file_bytes=0)
    with pytest.raises(PathRefused, match="exists: a recording never appends"):
        rec.start("subject01")
    assert existing.read_bytes() == b"previous session"
    (tmp_path / "rotated_part001.bio").write_bytes(b"x")
    with pytest.raises(PathRefused, match="exists"):
        recorder(tmp_path, max_file_bytes=MIB).start("rotated.bio")
    # A default (timestamped) name moves on instead.
    clock = FakeClock()
    first = recorder(tmp_path, clock=clock, max_file_bytes=0)
    name = first.start()
    first.stop()
    second = recorder(tmp_path, clock=clock, max_file_bytes=0)
    assert second.start() == name.with_name(name.stem + "_1.bio")
    second.stop()
    assert not rec.recording


@pytest.mark.parametrize("name, reason", [
    ("/tmp/evil.bio", "absolute path"),
    ("~/evil.bio", "absolute path"),
    ("../evil.bio", "contains '..'"),
    ("a/../../evil.bio", "contains '..'"),
    ("x.txt", "writes .bio files"),
])
def test_paths_outside_the_record_directory_are_refused(tmp_path, name, reason):
    rec = recorder(tmp_path / "records")
    with pytest.raises(PathRefused, match=reason):
        rec.start(name)
    assert not rec.recording and not (tmp_path / "evil.bio").exists()


def test_a_symbolic_link_out_of_the_record_directory_is_refused(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "escape").symlink_to(tmp_path)
    with pytest.raises(PathRefused, match="resolves outside"):
        recorder(tmp_path / "records").start("escape/x.bio")
    sub = recorder(tmp_path / "records", max_file_bytes=0)
    assert sub.start("day1/subject.bio") == tmp_path / "records" / "day1" / "subject.bio"
    sub.stop()


def test_the_default_directory_is_under_ros_home_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("ROS_HOME", str(tmp_path / "roshome"))
    monkeypatch.chdir(tmp_path)
    assert record_root(RecordFileSettings().record_directory) == \
        tmp_path / "roshome" / "biosig_ros" / "recordings"
    assert record_root("lab") == tmp_path / "roshome" / "lab"
    assert record_root(str(tmp_path / "abs")) == tmp_path / "abs"
    monkeypatch.delenv("ROS_HOME")
    assert str(record_root("x")) == os.path.expanduser("~/.ros/x")


def test_the_disk_guard_stops_recording_with_one_error_while_data_keeps_coming(tmp_path):
    free = {"bytes": 10 * MIB}
    errors = []
    rec = recorder(tmp_path, free=lambda _: free["bytes"], errors=errors, max_file_bytes=0,
                   min_free_bytes=5 * MIB)
    path = rec.start("guarded")
    feed(rec, 0)
    assert rec.flush()
    free["bytes"] = 4 * MIB                   # the disk fills up (other writers)
    feed(rec, 2000)
    assert not rec.flush()
    assert not rec.recording
    assert len(errors) == 1 and "below min_free_bytes" in errors[0]
    for block in range(2, 5):                 # samples keep arriving: ignored, no error
        feed(rec, block * 2000)
        rec.flush()
    assert len(errors) == 1
    with pytest.raises(RecorderError, match="below min_free_bytes"):
        rec.stop()
    data = load(str(path))                    # what was written stays a complete file
    np.testing.assert_array_equal(data["raw_device_data_index"][0][0], np.arange(2000))
    with pytest.raises(PathRefused, match="not recording: .* below min_free_bytes"):
        rec.start("again")


def test_the_disk_guard_on_a_real_tiny_filesystem(tmp_path):
    """The real free-space check, with the threshold set just above what is free now."""
    free_now = record_files.free_bytes(tmp_path)
    rec = recorder(tmp_path, min_free_bytes=free_now + 64 * MIB, max_file_bytes=0)
    with pytest.raises(PathRefused, match="below min_free_bytes"):
        rec.start("never")
    assert not list(tmp_path.glob("*.bio"))


def test_bad_file_settings_name_the_parameter():
    with pytest.raises(ConfigError, match="max_file_bytes"):
        RecordFileSettings(max_file_bytes=1000)
    with pytest.raises(ConfigError, match="max_file_seconds"):
        RecordFileSettings(max_file_seconds=-1.0)
