"""Whole graphs started with `python -m biosig_ros.graph` from tests, output in a log file."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ros_harness import REPO, NodeProcess


class GraphProcess(NodeProcess):
    """A graph runner in its own session; output (prefixed per node) in a log file. stop()
    sends SIGINT (Ctrl-C): the runner stops every node."""

    def __init__(self, graph: str, *args: str):  # noqa: super().__init__ starts one node
        self.name = graph
        self._log = tempfile.NamedTemporaryFile(
            mode="w+", prefix=f"graph-{graph}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "biosig_ros.graph", graph, *args], cwd=REPO,
            env=os.environ.copy(), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_for(self, pattern: str, timeout: float = 120.0, count: int = 1) -> re.Match | None:
        """The count-th match of a regular expression in the output, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = list(re.finditer(pattern, self.output()))
            if len(matches) >= count:
                return matches[count - 1]
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        return None

    def bridge_port(self, timeout: float = 120.0) -> int:
        match = self.wait_for(r"\[bridge\] .*serving biosiglive clients on [\d.]+:(\d+)", timeout)
        assert match, self.output()[-3000:]
        return int(match.group(1))

    def node_pids(self) -> dict[str, int]:
        """The newest process id of every node, from the runner's children."""
        result = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                                encoding="utf-8", errors="replace")
        pids = {}
        for pid in result.stdout.split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            words = [w.decode() for w in command]
            name = next((w.split(":=")[1] for w in words if w.startswith("__node:=")), None)
            if name is None and "biosig_ros.devices.trigno_simulator" in words:
                name = "trigno_sim"
            if name:
                pids[name] = int(pid)
        return pids

    def stop(self, sig=signal.SIGINT, timeout: float = 60.0) -> int:
        return super().stop(sig, timeout)
