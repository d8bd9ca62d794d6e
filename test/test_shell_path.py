"""Every executable of the package is a command in `tools/run shell` (tools/env.sh), as the
docs say (#22): each file of scripts/ is found on PATH there and bio_check answers --help."""
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # node processes and DDS (test/tiers.py)

REPO = Path(__file__).resolve().parent.parent


def test_every_executable_is_on_path_in_the_documented_shell():
    names = sorted(p.name for p in (REPO / "scripts").iterdir() if p.is_file())
    assert {"bio_check", "bio_convert", "assist_enable", "trigno_sim"} <= set(names)
    script = "".join(f"command -v {n} || echo MISSING {n}\n" for n in names)
    script += "bio_check --help >/dev/null && echo BIO_CHECK_OK\n"
    environment = {k: v for k, v in os.environ.items() if k not in ("PATH",)}
    environment["PATH"] = "/usr/bin:/bin"     # nothing inherited from the test's own shell
    result = subprocess.run([str(REPO / "tools" / "run"), "shell"], input=script, text=True,
                            capture_output=True, env=environment, cwd="/", timeout=600)
    found = [line for line in result.stdout.splitlines() if line.startswith("/")]
    assert "MISSING" not in result.stdout, result.stdout + result.stderr
    assert [Path(line).name for line in found] == names, result.stdout
    assert all(Path(line).parent == REPO / "install" / "biosig_ros" / "lib" / "biosig_ros"
               for line in found)
    assert "BIO_CHECK_OK" in result.stdout, result.stdout + result.stderr
