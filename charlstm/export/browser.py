"""Headless Chromium, driven over the DevTools protocol on a pipe: open a page, run its script API,
take a screenshot. Nothing but the standard library and the browser itself.

The exported page (charlstm.export.page) is JavaScript, so checking it means running it in a real
browser: the tests compare its generation and traces with the model's, scripts/bench_page.py
measures its speed, and the README's picture is its screenshot. All of them go through `Chromium`.

Chromium's `--remote-debugging-pipe` reads protocol commands on file descriptor 3 and writes
replies and events on descriptor 4, each a JSON message ending in a NUL byte; a two-line Python
launcher puts the two pipes on exactly those numbers and executes the browser.

Owns: finding the browser and the protocol conversation. Does not know: what a page contains.
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from charlstm.errors import CharlstmError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    """The path of an installed Chromium (or Chrome), or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


# argv: command-pipe fd, reply-pipe fd, the browser and its arguments. Both pipes are first copied
# to 10 or above (closed on exec) and the originals closed, so that neither can be overwritten when
# the other lands on 3 or 4, and the browser inherits exactly 3 and 4.
_LAUNCH = ("import fcntl, os, sys\n"
           "fds = [int(x) for x in sys.argv[1:3]]\n"
           "a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)\n"
           "for fd in fds: os.close(fd)\n"
           "os.dup2(a, 3); os.dup2(b, 4); os.execv(sys.argv[3], sys.argv[3:])\n")


class Chromium:
    """One headless browser with one page (a context manager).

        with Chromium() as b:
            b.open(Path("demo.html").as_uri())
            text = b.evaluate("window.charlstm.generate('def ', {length: 50, greedy: true})")
            b.screenshot("page.png")

    evaluate(expression) runs JavaScript in the page and returns its value (a Promise is awaited);
    an exception in the page raises CharlstmError with the page's message.
    """

    def __init__(self, binary: str | None = None, width: int = 1200, height: int = 800, timeout: float = 120.0):
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise CharlstmError("headless chromium is not installed (apt-get install -y chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = tempfile.TemporaryDirectory(prefix="charlstm-chromium-")
        cmd_r, self._cmd_w = os.pipe()    # we write commands, the browser reads them as fd 3
        self._out_r, out_w = os.pipe()    # the browser writes replies as fd 4
        args = [*FLAGS, f"--user-data-dir={self.profile.name}", f"--window-size={width},{height}", "about:blank"]
        # stderr to a file: chromium logs freely (D-Bus noise), and a full pipe nobody reads would block it
        self._log = open(Path(self.profile.name) / "stderr.log", "w+b")
        self.proc = subprocess.Popen([sys.executable, "-c", _LAUNCH, str(cmd_r), str(out_w), self.binary, *args],
                                     pass_fds=(cmd_r, out_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self._log)
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        try:
            self._attach()
        except BaseException:
            self.close()
            raise

    # -------------------------------------------------------------- the protocol
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CharlstmError("chromium did not answer in time")
            ready, _, _ = select.select([self._out_r], [], [], left)
            if ready:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise CharlstmError(f"chromium exited unexpectedly: {self._stderr_tail()}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def _stderr_tail(self) -> str:
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode(errors="replace").splitlines() if "dbus" not in ln]
        return " / ".join(lines[-3:])

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool | str = True,
             timeout: float | None = None) -> dict[str, Any]:
        """Send one protocol command -> its result. session: True for the page's, False for the
        browser itself, or the id of another session (a frame's, `frame_session`)."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if isinstance(session, str):
            msg["sessionId"] = session
        elif session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CharlstmError(f"chromium: {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def _attach(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            pages = [t for t in self.send("Target.getTargets", session=False)["targetInfos"] if t["type"] == "page"]
            if pages:
                break
            if time.monotonic() > deadline:
                raise CharlstmError("chromium opened no page")
            time.sleep(0.05)
        self.version = self.send("Browser.getVersion", session=False).get("product", "")
        self.session = self.send("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})

    # -------------------------------------------------------------- what callers use
    def open(self, url: str, ready: str = "document.documentElement.getAttribute('data-ready') === '1'") -> None:
        """Load url and wait until the JavaScript condition `ready` holds."""
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while not self.evaluate(f"(function () {{ try {{ return !!({ready}); }} catch (e) {{ return false; }} }})()"):
            if time.monotonic() > deadline:
                raise CharlstmError(f"the page {url} did not get ready")
            time.sleep(0.05)

    def frame_sessions(self) -> list[str]:
        """Sessions attached to the page's iframes that run in processes of their own (a sandboxed
        frame does), in the order Chromium lists them; pass one to `evaluate(..., session=)`."""
        frames = [t for t in self.send("Target.getTargets", session=False)["targetInfos"] if t["type"] == "iframe"]
        return [self.send("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True},
                          session=False)["sessionId"] for t in frames]

    def evaluate(self, expression: str, timeout: float | None = None, session: bool | str = True) -> Any:
        """The value of a JavaScript expression in the page (Promises awaited; JSON-like values);
        session: a frame's (`frame_sessions`) to evaluate in that frame."""
        r = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                      timeout=timeout, session=session)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "error")
            raise CharlstmError(f"in the page: {text.splitlines()[0]}")
        return r["result"].get("value")

    def screenshot(self, path: str | os.PathLike) -> Path:
        """A PNG of the page's viewport."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", session=False, timeout=10)
            except (CharlstmError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        self.profile.cleanup()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
