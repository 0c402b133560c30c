"""Headless Chromium (Debian's `chromium`, which .ci/run installs), driven over
the DevTools protocol with the websockets client: a page's fetch() against the
control plane (an admin route, a public one, a missing one), and a page's
WebSocket on the realtime route with its token in the query or in the
subprotocol list, the two ways a browser can send one."""

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

import jwt

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


def open_health_page(browser, server):
    """Loads the server's /health, so the page's origin is the server's."""
    origin = f"http://{server.host}:{server.port}"
    browser.call("Page.navigate", url=origin + "/health")
    deadline = time.monotonic() + TIMEOUT
    while browser.evaluate("document.readyState + ' ' + location.href") != f"complete {origin}/health":
        assert time.monotonic() < deadline, "the page did not load"
        time.sleep(0.1)


def test_browser_fetch_reaches_the_admin_api(server):
    browser = Chromium()
    try:
        open_health_page(browser, server)
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


# A page script: open a WebSocket, collect the message types until one of
# `until` arrives, sending `send` (JSON) after the welcome; resolve with
# [protocol, types, the last message] or ["closed", code].
CHAT = """
(url, protocols, send, until) => new Promise((resolve) => {
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  const types = [];
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    types.push(m.message_type);
    if (m.message_type === "welcome" && send) ws.send(JSON.stringify(send));
    if (m.message_type === until) { resolve([ws.protocol, types, m]); ws.close(); }
  };
  ws.onclose = (e) => resolve(["closed", e.code]);
  setTimeout(() => resolve(["timeout", types]), 10000);
})
"""


def test_browser_websocket_on_the_realtime_route(start_server):
    secret = "browser-secret-that-is-long-enough-for-hs256"
    server = start_server(env={"JWT_SECRET": secret, "RINGGATE_SHARDS": "2"})
    tok = jwt.encode({"sub": "ana", "username": "Ana", "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    base = f"ws://{server.host}:{server.port}"
    browser = Chromium()
    try:
        open_health_page(browser, server)

        def chat(url, protocols, send, until):
            args = json.dumps([url, protocols, send, until])[1:-1]
            return browser.evaluate(f"({CHAT})({args})")

        message = {"message_type": "room_message", "room": "general", "data": {"content": "from chromium"}}
        protocol, types, last = chat(f"{base}/ws/connect?token={tok}", None, message, "room_message")
        assert protocol == ""
        assert types == ["welcome", "room_joined", "room_message"]
        assert last["from_user_id"] == "ana" and last["data"] == {"content": "from chromium"}

        ping = {"message_type": "ping", "data": {"n": 1}}
        protocol, types, last = chat(f"{base}/ws", ["access_token", tok], ping, "pong")
        assert protocol == "access_token", "the browser accepted the selected protocol"
        assert (types, last["data"]) == (["welcome", "pong"], {"n": 1})

        # A refused token: the browser sees the upgrade fail (1006).
        assert chat(f"{base}/ws?token=nope", None, None, "welcome") == ["closed", 1006]
    finally:
        browser.close()
