"""A browser's fetch against the control plane: headless Chromium (Debian's
`chromium`, which .ci/run installs) opens /health, then calls fetch() on the
same origin for an admin route, a public one and a missing one, driven over
the DevTools protocol with the websockets client."""

import contextlib
import json
import os
import signal
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest
from websockets.sync.client import connect

TIMEOUT = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Chromium:
    """A headless Chromium and a DevTools connection to its first page."""

    def __init__(self):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            pytest.skip("chromium is not installed (.ci/run installs it)")
        # Chromium's helper processes may still write to the profile while it
        # is removed: kill the whole process group, and clean up leniently.
        self.profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--remote-debugging-port={port}", f"--user-data-dir={self.profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                pytest.fail("chromium's DevTools endpoint did not come up")
            time.sleep(0.2)
        self.stack = contextlib.ExitStack()
        self.ws = self.stack.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=TIMEOUT)
        )
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=TIMEOUT))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def close(self):
        if getattr(self, "stack", None):
            self.stack.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.profile.cleanup()


def test_browser_fetch_reaches_the_admin_api(server):
    browser = Chromium()
    try:
        origin = f"http://{server.host}:{server.port}"
        browser.call("Page.navigate", url=origin + "/health")
        deadline = time.monotonic() + TIMEOUT
        while browser.evaluate("document.readyState + ' ' + location.href") != f"complete {origin}/health":
            assert time.monotonic() < deadline, "the page did not load"
            time.sleep(0.1)
        page = json.loads(browser.evaluate("document.body.innerText"))
        assert page["status"] == "healthy"
        answers = browser.evaluate(
            "Promise.all(["
            " fetch('/metrics').then(r => r.status),"
            " fetch('/ws/health').then(r => r.json()).then(j => j.status),"
            " fetch('/nowhere').then(r => r.json()).then(j => j.error.code),"
            " fetch('/connections?limit=1', {method: 'POST', body: 'x'}).then(r => r.status),"
            "])"
        )
        assert answers == [200, "healthy", "not_found", 405]
    finally:
        browser.close()
