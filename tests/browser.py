"""Headless Chromium driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages
ended by a NUL byte on file descriptors 3 and 4), standard library only: open a tab, run
JavaScript in it (awaiting promises), wait for a condition. One profile per Browser, kept
between tabs as a person's browser keeps it (cookies, localStorage).

    with Browser(tmp_path / "profile") as b:
        tab = b.open("http://127.0.0.1:8080/")
        b.wait(tab, "document.getElementById('status').textContent === 'running'")"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Optional

import pytest


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("chromium (Debian package chromium) is not installed")
    return path


class Browser:
    def __init__(self, profile: Path, timeout: float = 30.0):
        self.timeout, self.next_id, self.buf = timeout, 0, b""
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def fds():       # the browser reads commands on 3 and writes answers on 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)
        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=fds,
            close_fds=False)      # closing comes after preexec_fn (3, 4); Python opens no inheritable fds
        os.close(to_browser_r)
        os.close(from_browser_w)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, AssertionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> Dict[str, Any]:
        """Send one DevTools command and wait for its answer (events in between are dropped)."""
        self.next_id += 1
        msg: Dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_browser, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + self.timeout
        while True:
            while b"\0" not in self.buf:
                left = end - time.monotonic()
                assert left > 0 and select.select([self.from_browser], [], [], left)[0], f"no answer to {method}"
                chunk = os.read(self.from_browser, 1 << 20)
                assert chunk, "chromium closed its DevTools pipe"
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                assert "error" not in answer, (method, answer["error"])
                return answer.get("result", {})

    def open(self, url: str) -> str:
        """A new tab at ``url``: its session."""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def js(self, tab: str, expression: str) -> Any:
        """The value of ``expression`` in the tab (a promise is awaited)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                      session=tab)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def wait(self, tab: str, expression: str, timeout: float = 20.0) -> Any:
        """Wait until ``expression`` is truthy in the tab; its value."""
        end = time.monotonic() + timeout
        while True:
            try:
                value = self.js(tab, expression)
            except AssertionError:      # the page is still loading (no context yet)
                value = None
            if value:
                return value
            assert time.monotonic() < end, f"timed out after {timeout:.0f} s waiting for {expression}"
            time.sleep(0.2)
