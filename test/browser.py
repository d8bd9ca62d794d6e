"""Headless Chromium for tests, benchmarks and screenshots, driven over the DevTools protocol.

Stdlib only: a minimal websocket client (RFC 6455, client side: masked text frames out,
unmasked frames in) carries the protocol's JSON. Chromium is Debian's `chromium` package,
installed by tools/bootstrap.sh.

    with Browser() as browser:
        page = browser.open("http://127.0.0.1:8080/")
        page.wait_for("window.__liveView && window.__liveView.frames > 10")
        page.evaluate("window.__liveView.fps")
        page.screenshot("docs/images/live_view.png")
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
         # Several pages watch at once in the tests: none of them may be throttled as hidden.
         "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
         "--disable-backgrounding-occluded-windows")


def find_chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no Chromium found (Debian package 'chromium'): tools/bootstrap.sh "
                       "installs it")


class WebSocket:
    """A blocking websocket client connection (text messages only)."""

    def __init__(self, url: str, timeout: float = 30.0):
        parts = urlsplit(url)
        self._socket = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._socket.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self._socket.recv(4096)
            if not chunk:
                raise ConnectionError("the websocket handshake was cut")
            response += chunk
        head, self._buffer = response.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket refused: {head[:200]!r}")

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self._socket.recv(max(65536, count - len(self._buffer)))
            if not chunk:
                raise ConnectionError("the websocket was closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", length)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._socket.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        try:
            self._socket.close()
        except OSError:
            pass


class Browser:
    """A headless Chromium process of its own (temporary profile), ended by close()."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 60.0):
        self.profile = tempfile.mkdtemp(prefix="biosig-chromium-")
        self.log = open(Path(self.profile) / "chromium.log", "w")
        self.process = subprocess.Popen(
            [find_chromium(), *FLAGS, f"--user-data-dir={self.profile}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.width, self.height = width, height
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text(encoding="utf-8").split()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"Chromium did not start: {self.output()[-2000:]}")
            time.sleep(0.1)
        port, path = port_file.read_text(encoding="utf-8").split()[:2]
        self._ws = WebSocket(f"ws://127.0.0.1:{port}{path}", timeout=timeout)
        self._next_id = 0

    def output(self) -> str:
        return (Path(self.profile) / "chromium.log").read_text(errors="replace")

    def command(self, method: str, params: dict | None = None, session: str | None = None):
        """One DevTools command; returns its result (events in between are skipped)."""
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        self._ws.send(json.dumps(request))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> "Page":
        target = self.command("Target.createTarget", {"url": "about:blank", "newWindow": True})
        session = self.command("Target.attachToTarget", {"targetId": target["targetId"],
                                                         "flatten": True})["sessionId"]
        page = Page(self, target["targetId"], session)
        self.command("Emulation.setDeviceMetricsOverride", {
            "width": self.width, "height": self.height, "deviceScaleFactor": 1,
            "mobile": False}, session)
        self.command("Page.navigate", {"url": url}, session)
        return page

    def close(self) -> None:
        """End this Chromium (its own process group, by PID) and remove its profile."""
        if getattr(self, "_ws", None) is not None:
            self._ws.close()
            self._ws = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One browser window (a DevTools target attached in flat session mode)."""

    def __init__(self, browser: Browser, target_id: str, session: str):
        self.browser, self.target_id, self.session = browser, target_id, session

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page."""
        result = self.browser.command("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True},
            self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(f"!!({expression})"):
                return True
            time.sleep(interval)
        return False

    def screenshot(self, path: str | Path) -> Path:
        data = self.browser.command("Page.captureScreenshot", {"format": "png"}, self.session)
        path = Path(path)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        self.browser.command("Target.closeTarget", {"targetId": self.target_id})


def module_fixtures(make_graph, width: int, height: int):
    """The `demo` and `browser` module fixtures of a browser test: make_graph(tmp_dir) starts
    the graph the page shows (an object with stop()), once per module; one Chromium window."""
    import pytest

    @pytest.fixture(scope="module")
    def demo(tmp_path_factory):
        graph = make_graph(tmp_path_factory.mktemp("live_view"))
        try:
            yield graph
        finally:
            graph.stop()

    @pytest.fixture(scope="module")
    def browser():
        with Browser(width=width, height=height) as chromium:
            yield chromium

    return demo, browser


def main() -> None:
    """Screenshot of a running live view, e.g. for docs/images:
    python test/browser.py http://127.0.0.1:8080/ docs/images/live_view.png [--raw]"""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("output")
    parser.add_argument("--raw", action="store_true", help="tick the page's raw EMG box")
    parser.add_argument("--seconds", type=float, default=12.0, help="wait before the shot")
    parser.add_argument("--size", default="1400x1250")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with Browser(width, height) as browser:
        page = browser.open(args.url)
        if not page.wait_for("window.__liveView && __liveView.frames > 5", 60):
            raise SystemExit(f"the page at {args.url} drew nothing")
        if args.raw:
            page.evaluate("document.getElementById('raw-toggle').click()")
        time.sleep(args.seconds)
        page.screenshot(args.output)
        print(f"{args.output}: {page.evaluate('JSON.stringify(__liveView.markers)')}")


if __name__ == "__main__":
    main()
