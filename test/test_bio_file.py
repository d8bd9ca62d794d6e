"""The .bio file: safe reading, biosiglive.load compatibility, crash repair, portable pickles,
the bridge's recorder and the .bio -> .c3d converter."""
import io
import pickle
import re
import time

import ezc3d
import numpy as np
import pytest
from biosiglive import load, save

from biosig_ros.bridge.bio_convert import convert, run as bio_convert
from biosig_ros.bridge.bio_recorder import BioRecorder, RecorderError, RecorderSettings
from biosig_ros.errors import ConfigError
from biosig_ros.io.bio_file import (
    BioWriter, bio_path, load_bio, merge_records, read_bio_records)
from biosig_ros.io.pickle_compat import dumps_portable, loads_numpy, loads_plain
from biosig_ros.paths import resolve_data_path

from assertions import assert_same
from hostile_payloads import RunsCode

ABD = resolve_data_path("data/abd.bio")


def records():
    rng = np.random.default_rng(0)
    return [{"emg": rng.normal(size=(2, 20)), "markers": rng.normal(size=(3, 4, 1)),
             "latency": 0.5 * i, "name": f"r{i}", "info": {"i": i}, "values": [i, i + 1]}
            for i in range(3)] + [{"emg": rng.normal(size=(2, 5)), "late_key": 7}]


def test_merge_matches_biosiglive_load_on_a_file_biosiglive_saved(tmp_path):
    path = str(tmp_path / "saved.bio")
    for record in records():
        save(record, path)
    assert_same(load_bio(path), load(path))
    assert load_bio(path)["emg"].shape == (2, 65)


def test_biowriter_output_loads_in_biosiglive(tmp_path):
    with BioWriter(tmp_path / "written") as writer:
        for record in records():
            writer.append(record)
    assert writer.path.name == "written.bio"
    assert_same(load(str(writer.path)), merge_records(records()))


def test_torn_tail_is_skipped_and_cut_on_reopen(tmp_path):
    path = tmp_path / "torn.bio"
    with BioWriter(path) as writer:
        for record in records()[:3]:
            writer.append(record)
    whole = path.stat().st_size
    torn = dumps_portable(records()[3])
    with open(path, "ab") as file:
        file.write(torn[: len(torn) // 2])  # what a kill -9 in the middle of a write leaves
    with pytest.raises(pickle.UnpicklingError):
        load(str(path))  # biosiglive loses the whole file
    content = read_bio_records(path)
    assert content.torn_tail and content.valid_bytes == whole and len(content.records) == 3
    writer = BioWriter(path)
    writer.append(records()[3])
    writer.close()
    assert writer.repaired_bytes == len(torn) // 2
    assert_same(load(str(path)), merge_records(records()))


def test_bio_convert_repair_makes_the_file_loadable_again(tmp_path, capsys):
    path = tmp_path / "crashed.bio"
    with BioWriter(path) as writer:
        writer.append({"raw_device_data": [np.ones((2, 40))], "marker_set_data": [np.ones((3, 2, 2))]})
    with open(path, "ab") as file:
        file.write(dumps_portable({"raw_device_data": [np.ones((2, 40))]})[:50])
    assert bio_convert([str(path), "--repair", "-o", str(tmp_path / "out.c3d")]) == 0
    assert "cut 50 bytes" in capsys.readouterr().out
    assert load(str(path))["raw_device_data"][0][0].shape == (2, 40)


def test_a_bio_file_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.bio"
    path.write_bytes(pickle.dumps({"emg": np.zeros(2)}) + pickle.dumps({"x": RunsCode(marker)}))
    with pytest.raises(ConfigError, match="not plain data"):
        load_bio(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (pickle.dumps([1, 2]), "not a dict"), (b"not a pickle at all", "no readable record")])
def test_foreign_files_are_named(tmp_path, content, message):
    path = tmp_path / "foreign.bio"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_bio(path)


def test_bio_path_rules(tmp_path):
    assert bio_path(tmp_path / "x") == tmp_path / "x.bio"
    assert bio_path("y.bio").name == "y.bio"
    with pytest.raises(ConfigError, match="must end in .bio"):
        bio_path("z.txt")


def test_abd_example_loads_like_biosiglive():
    ours, theirs = load_bio(ABD), load(str(ABD))
    assert ours["emg"].shape == (10, 14000) and ours["markers"].shape == (3, 16, 700)
    assert_same(ours, theirs)


# --- portable pickles -----------------------------------------------------------------------
class NumPy1Unpickler(pickle.Unpickler):
    """Loads like a NumPy 1.x peer: there is no numpy._core module there."""

    def find_class(self, module, name):
        if module.startswith("numpy._core"):
            raise ModuleNotFoundError(f"No module named '{module}' (NumPy 1.x)")
        return super().find_class(module.replace("numpy.core", "numpy._core"), name)


# Protocol 5 arrays name numpy.core.numeric._frombuffer, which NumPy 2 loads with a warning
# (the bridge writes protocol 4).
@pytest.mark.filterwarnings("ignore:numpy.core.numeric is deprecated:DeprecationWarning")
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dumps_portable_loads_on_numpy1_and_numpy2(protocol):
    value = {"a": [np.arange(12.0).reshape(3, 4), np.float64(2.5), np.int64(3)],
             "b": np.zeros((3, 2, 1), dtype=np.float32), "c": "text", "d": np.asfortranarray(np.eye(3))}
    data = dumps_portable(value, protocol=protocol)
    assert b"numpy._core" not in data
    for loaded in (pickle.loads(data), NumPy1Unpickler(io.BytesIO(data)).load(), loads_numpy(data)):
        assert_same(loaded, value)
    with pytest.raises(ModuleNotFoundError):
        NumPy1Unpickler(io.BytesIO(pickle.dumps(value, protocol=4))).load()


def test_loads_plain_refuses_every_global(tmp_path):
    assert loads_plain(pickle.dumps({"a": [1, 2.0, None, True, "x", b"y"]})) == {
        "a": [1, 2.0, None, True, "x", b"y"]}
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        loads_plain(pickle.dumps(np.zeros(2)))
    marker = tmp_path / "code_ran"
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        loads_plain(pickle.dumps(RunsCode(marker)))
    assert not marker.exists()


# --- the bridge's recorder ------------------------------------------------------------------
LAYOUT = {"proc_device_data": 1, "raw_device_data": 2, "kinematics_data": 0, "marker_set_data": 1}


def make_recorder(tmp_path, **settings):
    return BioRecorder(LAYOUT, RecorderSettings(**{"record_directory": str(tmp_path),
                                                   "max_file_bytes": 0, **settings}))


def test_recorder_records_new_samples_gaplessly_and_biosiglive_loads_them(tmp_path):
    # A 100 s save period: only the explicit flush() calls below write records.
    recorder = make_recorder(tmp_path, record_path="run", save_frequency=0.01)
    path = recorder.start()
    assert path == tmp_path / "run.bio"
    rng = np.random.default_rng(1)
    raw = [rng.normal(size=(3, 20)) for _ in range(7)]
    markers = [rng.normal(size=(3, 4, 1)) for _ in range(7)]
    recorder.describe("raw_device_data", 0, topic="/emg/raw", names=["a", "b", "c"], rate=2000.0, unit="V")
    for i in range(7):
        recorder.add("raw_device_data", 0, raw[i], 10.0 + (20 * i + np.arange(20)) / 2000.0,
                     20 * i + np.arange(20))
        recorder.add("marker_set_data", 0, markers[i], np.array([10.0 + i / 100]), np.array([i]))
        recorder.add("kinematics_data", 0, np.ones((2, 1)), np.zeros(1), np.zeros(1))  # not recorded
        if i % 3 == 0:
            assert recorder.flush()
    assert not recorder.flush()  # nothing new: no empty record
    recorder.stop()
    data = load(str(path))
    assert set(data) >= {"raw_device_data", "raw_device_data_time", "raw_device_data_index",
                         "marker_set_data", "absolute_time_frame", "interface_latency",
                         "process_time", "initial_time", "time_to_get_data", "saving_time",
                         "record_time", "sources"}
    assert "proc_device_data" not in data and "kinematics_data" not in data
    # Flushes after loops 0, 3 and 6; stop() finds nothing new and writes no empty record.
    assert len(data["raw_device_data"]) == recorder.records_written == 3
    # Two raw sources: the second never produced data, its entries are empty arrays.
    assert all(len(r) == 2 and r[1].shape == (0, 0) for r in data["raw_device_data"])
    np.testing.assert_array_equal(np.concatenate([r[0] for r in data["raw_device_data"]], axis=1),
                                  np.concatenate(raw, axis=1))
    np.testing.assert_array_equal(np.concatenate([r[0] for r in data["raw_device_data_index"]]),
                                  np.arange(140))
    np.testing.assert_array_equal(np.concatenate([r[0] for r in data["marker_set_data"]], axis=-1),
                                  np.concatenate(markers, axis=-1))
    assert data["sources"][-1]["raw_device_data"][0]["names"] == ["a", "b", "c"]
    for key in ("interface_latency", "process_time", "saving_time", "record_time"):
        assert all(type(v) is float for v in data[key]), key


def test_recorder_thread_writes_at_the_save_frequency(tmp_path):
    recorder = make_recorder(tmp_path, record_path="threaded.bio", save_frequency=50.0)
    path = recorder.start()
    for i in range(30):
        recorder.add("proc_device_data", 0, np.full((2, 4), float(i)), np.zeros(4), 4 * i + np.arange(4))
        time.sleep(0.005)
    time.sleep(0.1)
    written_while_running = recorder.records_written
    recorder.stop()
    assert written_while_running >= 2
    proc = np.concatenate([r[0] for r in load(str(path))["proc_device_data"]], axis=1)
    np.testing.assert_array_equal(proc, np.repeat(np.arange(30.0), 4)[None, :].repeat(2, axis=0))


def test_recorder_states_and_names(tmp_path):
    recorder = make_recorder(tmp_path, max_file_bytes=2 ** 20)
    with pytest.raises(RecorderError, match="not recording"):
        recorder.stop()
    path = recorder.start()
    assert re.fullmatch(r"streamed_data_\d{8}_\d{6}_part001\.bio", path.name)
    with pytest.raises(RecorderError, match="already recording"):
        recorder.start()
    recorder.stop()
    with pytest.raises(ConfigError, match="must end in .bio"):
        RecorderSettings(record_path="out.txt")
    with pytest.raises(ConfigError, match="no absolute path"):
        RecorderSettings(record_path="/abs/x.bio")
    with pytest.raises(ConfigError, match="save_frequency"):
        RecorderSettings(save_frequency=0)


def test_timestamped_names_never_overwrite(tmp_path):
    def recorder():
        return BioRecorder(LAYOUT, RecorderSettings(record_directory=str(tmp_path),
                                                    max_file_bytes=0), clock=lambda: 1e9)
    first = recorder()
    first_path = first.start()
    first.stop()
    second = recorder()
    assert second.start() == first_path.with_name(first_path.stem + "_1.bio")
    second.stop()


# --- converter ------------------------------------------------------------------------------
def test_convert_abd_example_to_c3d(tmp_path):
    target, notes = convert(ABD, tmp_path / "abd.c3d")
    c3d = ezc3d.c3d(str(target))
    source = load(str(ABD))
    np.testing.assert_allclose(c3d["data"]["points"][:3], source["markers"], rtol=1e-6)
    np.testing.assert_allclose(c3d["data"]["analogs"][0], source["emg"], rtol=1e-6, atol=1e-9)
    assert c3d["header"]["points"]["frame_rate"] == 100.0
    assert c3d["header"]["analogs"]["frame_rate"] == 2000.0
    assert notes == ["markers: the recording has no names: named M0..M15 (give --model or "
                     "--marker-names so that the .c3d matches the model)"]


def test_convert_a_bridge_recording_aligns_and_labels(tmp_path):
    recorder = make_recorder(tmp_path, record_path="rec", save_frequency=1000.0)
    path = recorder.start()
    recorder.describe("marker_set_data", 0, topic="/markers", names=["A", "B"], rate=100.0, unit="mm")
    recorder.describe("raw_device_data", 0, topic="/emg/raw", names=["e0"], rate=1000.0, unit="V")
    markers = np.arange(3 * 2 * 5, dtype=float).reshape(3, 2, 5) + 1
    markers[:, 1, 2] = 0.0  # occluded (Vicon zeros)
    emg = np.arange(60, dtype=float).reshape(1, 60)
    t0 = 100.0
    recorder.add("marker_set_data", 0, markers, t0 + np.arange(5) / 100, np.arange(5))
    # The EMG starts 10 ms (10 samples) after the first marker frame.
    recorder.add("raw_device_data", 0, emg, t0 + 0.01 + np.arange(60) / 1000, np.arange(60))
    recorder.stop()
    target, _ = convert(path)
    c3d = ezc3d.c3d(str(target))
    assert c3d["parameters"]["POINT"]["LABELS"]["value"] == ["A", "B"]
    assert c3d["parameters"]["ANALOG"]["LABELS"]["value"] == ["e0"]
    points = c3d["data"]["points"]
    assert np.isnan(points[:3, 1, 2]).all()
    np.testing.assert_array_equal(points[:3, 0], markers[:, 0])
    analogs = c3d["data"]["analogs"][0, 0]
    assert analogs.shape == (50,)
    assert np.isnan(analogs[:10]).all()
    np.testing.assert_array_equal(analogs[10:], emg[0, :40])


def test_convert_errors_are_named(tmp_path):
    empty = tmp_path / "empty.bio"
    with BioWriter(empty) as writer:
        writer.append({"note": "nothing"})
    assert bio_convert([str(empty)]) == 2
    assert bio_convert([str(tmp_path / "missing.bio")]) == 2
    with pytest.raises(ConfigError, match="must end in .c3d"):
        convert(ABD, tmp_path / "x.trc")


def test_a_failed_write_is_cut_off_so_later_records_stay_readable(tmp_path, monkeypatch):
    writer = BioWriter(tmp_path / "full.bio")
    writer.append({"a": np.ones(3)})
    real_write = writer._file.write
    calls = []

    def write_then_fail(data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(data[:10])  # a partial write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "_file", _FileProxy(writer._file, write_then_fail))
    with pytest.raises(OSError):
        writer.append({"a": np.ones(3)})
    monkeypatch.undo()
    writer.append({"a": np.full(3, 2.0)})
    writer.close()
    np.testing.assert_array_equal(load(str(writer.path))["a"], [1, 1, 1, 2, 2, 2])


class _FileProxy:
    def __init__(self, file, write):
        self._file, self.write = file, write

    def __getattr__(self, name):
        return getattr(self._file, name)
