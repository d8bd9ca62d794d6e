"""The pip-installed core: the wheel, installed into a fresh virtual environment with only what
it pulls in (its dependencies and the documented extras), runs every installed command on the
shipped data. Nothing of this checkout or of the ROS environment is visible to it.

The dependencies come from a local wheelhouse (core_wheel.wheelhouse_for: the pinned versions,
downloaded on the first run only), so the test needs no network after that and its install
step is as fast as pip can unpack; it stays in the suite because it is the only check that
setup.py's dependencies and entry points are complete."""
import os
import re
import socket
import subprocess
import sys
import venv

import ezc3d
import pytest

from core_wheel import build_core_wheel, wheelhouse_for
from ros_harness import REPO

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

ABD = REPO / "data" / "abd.bio"
MODEL = REPO / "data" / "Wu_Shoulder_Model_mod_wt_wrapp.bioMod"
COMMANDS = ("bio_convert", "trigno_sim", "bio_check", "vicon_wire_sim")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("pip_core")
    wheel = build_core_wheel(root)
    wheelhouse = wheelhouse_for(wheel)
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PYTHON", "AMENT", "COLCON", "CMAKE", "ROS", "VIRTUAL"))
                   and k not in ("LD_LIBRARY_PATH",)}
    environment["PATH"] = f"{root / 'venv' / 'bin'}:/usr/bin:/bin"
    # pip of this environment installs into the new one (--python): no ensurepip run there;
    # no byte-compiling of scipy & co. either (Python does it on first import if needed)
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(root / "venv" / "bin" / "python"),
         "install", "-q", "--no-compile", "--no-index", "--find-links", str(wheelhouse),
         f"{wheel}[all]"], capture_output=True, encoding="utf-8", errors="replace", timeout=1200,
        env=environment)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return root, environment


def run(fresh_venv, *argv, timeout=300):
    root, environment = fresh_venv
    return subprocess.run([str(a) for a in argv], capture_output=True, encoding="utf-8",
                          errors="replace", cwd=root, env=environment, timeout=timeout)


@pytest.mark.slow
def test_the_commands_and_the_package_come_from_the_fresh_environment(fresh_venv):
    root, _ = fresh_venv
    for command in COMMANDS:
        assert (root / "venv" / "bin" / command).is_file(), command
    where = run(fresh_venv, root / "venv" / "bin" / "python", "-c",
                "import biosig_ros.io.recording as m, sys; print(m.__file__, sys.prefix)")
    assert where.returncode == 0, where.stderr
    assert str(root / "venv") in where.stdout and str(REPO) not in where.stdout


@pytest.mark.slow
def test_bio_convert_writes_a_c3d(fresh_venv):
    root, _ = fresh_venv
    result = run(fresh_venv, "bio_convert", ABD, "-o", root / "abd.c3d")
    assert result.returncode == 0, result.stderr
    c3d = ezc3d.c3d(str(root / "abd.c3d"))
    assert c3d["data"]["points"].shape[1:] == (16, 700)
    assert c3d["data"]["analogs"].shape[1:] == (10, 14000)


@pytest.mark.slow
def test_bio_check_names_the_swapped_markers(fresh_venv):
    result = run(fresh_venv, "bio_check", ABD, MODEL)
    assert result.returncode == 0, result.stderr
    assert "STYLu and LARM_elb look swapped" in result.stdout


@pytest.mark.slow
def test_trigno_sim_serves_the_recording(fresh_venv):
    root, environment = fresh_venv
    process = subprocess.Popen(
        ["trigno_sim", "--recording", str(ABD), "--port-base", "0", "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="replace",
        cwd=root, env=environment)
    try:
        line = process.stdout.readline()
        found = re.search(r"command=(\d+)", line)
        assert found, line
        with socket.create_connection(("127.0.0.1", int(found.group(1))), timeout=30) as client:
            banner = b""
            while not banner.endswith(b"\r\n\r\n"):
                chunk = client.recv(1024)
                assert chunk, banner
                banner += chunk
        assert banner.startswith(b"Delsys Trigno System Digital Protocol")
        assert "10 EMG channels" in line
    finally:
        process.terminate()
        process.wait(timeout=30)
