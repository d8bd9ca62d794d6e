"""The pip-installed core writes .mcap (#22): `pip install ".[mcap]"` (from a copy of the
checkout, network-free: --no-build-isolation and the local package index) in a fresh virtual
environment, then `bio_convert x.bio -o x.mcap` on a bridge recording; the file read back in
that environment (mcap reader + mcap_ros2 decoder) holds the recorded values. With the extra's
module gone, the same command is one line naming the extra (exit status 2), no traceback."""
import json
import os
import subprocess
import sys
import venv

import numpy as np
import pytest

from biosig_ros.bridge.bio_recorder import BioRecorder, RecorderSettings
from core_wheel import core_source

READ_BACK = """
import json, sys
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
got = {}
with open(sys.argv[1], "rb") as stream:
    reader = make_reader(stream, decoder_factories=[DecoderFactory()])
    for schema, channel, message, ros in reader.iter_decoded_messages(log_time_order=False):
        row = got.setdefault(channel.topic, [])
        if schema.name.endswith("SignalChunk"):
            row.append([ros.first_sample_index, list(ros.data)])
        elif schema.name.endswith("MarkerSet"):
            row.append([ros.frame_number, list(ros.marker_names), ros.positions[0].x])
        else:
            row.append([list(ros.name), list(ros.position)])
print(json.dumps(got))
"""


def bridge_recording(directory):
    layout = {"raw_device_data": 1, "marker_set_data": 1, "kinematics_data": 1}
    recorder = BioRecorder(layout, RecorderSettings(record_directory=str(directory),
                                                    max_file_bytes=0, save_frequency=0.01))
    path = recorder.start("x")
    recorder.describe("raw_device_data", 0, topic="/emg/raw", names=["e0", "e1"], rate=1000.0,
                      unit="V")
    recorder.describe("marker_set_data", 0, topic="/markers", names=["STER", "C7"], rate=100.0,
                      unit="mm")
    recorder.describe("kinematics_data", 0, topic="/ik/joint_states", names=["q0"], rate=None,
                      unit="rad")
    emg = np.arange(2 * 40, dtype=float).reshape(2, 40) / 1000
    recorder.add("raw_device_data", 0, emg, 50.0 + np.arange(40) / 1000, np.arange(40))
    markers = np.arange(3 * 2 * 4, dtype=float).reshape(3, 2, 4) + 1.0
    recorder.add("marker_set_data", 0, markers, 50.0 + np.arange(4) / 100, np.arange(4))
    recorder.add("kinematics_data", 0, np.array([[0.5, 0.25]]), 50.0 + np.array([0.0, 0.01]),
                 np.array([0, 1]))
    assert recorder.flush()
    recorder.stop()
    return path, emg, markers


@pytest.mark.integration
@pytest.mark.slow
def test_pip_installed_core_writes_mcap_and_names_a_missing_extra(tmp_path):
    source = core_source(tmp_path)
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PYTHON", "AMENT", "COLCON", "CMAKE", "ROS", "VIRTUAL"))
                   and k not in ("LD_LIBRARY_PATH",)}
    environment["PATH"] = f"{tmp_path / 'venv' / 'bin'}:/usr/bin:/bin"
    venv.EnvBuilder(with_pip=False).create(tmp_path / "venv")
    python = str(tmp_path / "venv" / "bin" / "python")
    # pip of this environment works on the new one (--python), as in test_pip_core: no
    # ensurepip there. --no-compile: byte-compiling every installed module was most of pip's
    # CPU (the modules still import: Python compiles them on use).
    pip = [sys.executable, "-m", "pip", "--python", python]

    def run(*argv, cwd=tmp_path, timeout=300):
        return subprocess.run([str(a) for a in argv], capture_output=True, encoding="utf-8",
                              errors="replace", cwd=cwd, env=environment, timeout=timeout)

    # The build backend's own tools, then the documented command for the extra this test
    # needs (".[all]" adds biorbd: test_pip_core installs the wheel with it), from the
    # checkout's copy.
    tools = run(*pip, "install", "-q", "--no-compile", "setuptools", "wheel", timeout=600)
    assert tools.returncode == 0, tools.stderr[-3000:]
    installed = run(*pip, "install", "-q", "--no-compile", "--no-build-isolation", ".[mcap]",
                    cwd=source, timeout=1200)
    assert installed.returncode == 0, installed.stderr[-3000:]

    path, emg, markers = bridge_recording(tmp_path / "records")
    target = tmp_path / "x.mcap"
    converted = run("bio_convert", path, "-o", target)
    assert converted.returncode == 0, converted.stdout + converted.stderr
    back = run(python, "-c", READ_BACK, target)
    assert back.returncode == 0, back.stderr
    got = json.loads(back.stdout)
    (first, data), = got["/emg/raw"]
    assert first == 0
    np.testing.assert_array_equal(np.reshape(data, (40, 2)), emg.T)
    assert [row[0] for row in got["/markers"]] == [0, 1, 2, 3]
    assert got["/markers"][0][1] == ["STER", "C7"]
    assert got["/markers"][2][2] == pytest.approx(markers[0, 0, 2] / 1000)
    assert got["/ik/joint_states"] == [[["q0"], [0.5]], [["q0"], [0.25]]]
    # Nothing of this checkout was used: the schemas came from the installed package.
    where = run(python, "-c", "import biosig_ros.bridge.mcap_schema as m; print(m.__file__)")
    assert str(tmp_path / "venv") in where.stdout

    # Without the extra's module: one line naming the extra.
    removed = run(*pip, "uninstall", "-y", "-q", "mcap-ros2-support")
    assert removed.returncode == 0, removed.stderr
    failed = run("bio_convert", path, "-o", tmp_path / "y.mcap")
    assert failed.returncode == 2, failed.stdout + failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert "needs the 'mcap' extra (mcap_ros2 is not installed): pip install " \
           "\"biosig-ros-core[mcap]\"" in lines[0]


def fields(text: str) -> list[str]:
    """A schema's field lines (comments and blank lines dropped)."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [" ".join(line.split()) for line in lines if line]


@pytest.mark.parametrize("type_name", ["biosig_ros/msg/SignalChunk", "biosig_ros/msg/MarkerSet",
                                       "sensor_msgs/msg/JointState"])
def test_the_bundled_definitions_give_the_ros_schemas_fields(type_name, monkeypatch):
    """Every type bio_to_mcap writes resolves without ROS (the bundled Header, Time, Point,
    JointState), to the same fields as the ROS environment's definitions."""
    from biosig_ros.bridge import mcap_schema

    with_ros = mcap_schema.message_definition(type_name)
    mcap_schema.message_definition.cache_clear()
    monkeypatch.setattr(mcap_schema, "_share_roots", lambda: [])
    try:
        without_ros = mcap_schema.message_definition(type_name)
    finally:
        mcap_schema.message_definition.cache_clear()
    assert fields(without_ros) == fields(with_ros)
