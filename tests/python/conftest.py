"""Fixtures: spawn the real ringgate binary on an ephemeral loopback port.

The binary is $RINGGATE_BIN, else target/debug/ringgate (build it first with
`cargo build`). The child inherits the environment, so RINGGATE_IO=epoll runs
the whole Python suite on the fallback driver.
"""

import os
import pathlib
import queue
import re
import subprocess
import tempfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
LISTENING = re.compile(r"^listening on (\S+):(\d+)\s*$")


def binary() -> str:
    path = os.environ.get("RINGGATE_BIN") or str(ROOT / "target" / "debug" / "ringgate")
    if not os.access(path, os.X_OK):
        pytest.fail(f"ringgate binary not found at {path}; run `cargo build` or set RINGGATE_BIN")
    return path


class Server:
    """One running ringgate process."""

    def __init__(self, env=None, args=()):
        self.stderr = tempfile.TemporaryFile()
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [binary(), "--host", "127.0.0.1", "--port", "0", *args],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        lines = queue.Queue()

        def pump():  # reports the listening line, then keeps the pipe drained
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=STARTUP_TIMEOUT)
                if line is None:
                    raise RuntimeError("ringgate exited before listening")
                m = LISTENING.match(line)
                if m:
                    self.host, self.port = m.group(1), int(m.group(2))
                    break
        except (queue.Empty, RuntimeError) as e:
            self.stop()
            pytest.fail(f"ringgate did not start ({e or 'timeout'}); stderr:\n{self.log()}")

    def url(self, path="/echo"):
        return f"ws://{self.host}:{self.port}{path}"

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def start_server(request):
    """Factory: start_server(env={...}, args=[...]) -> Server; all are killed
    at the end of the test, and their stderr is shown when it failed."""
    servers = []

    def start(env=None, args=()):
        s = Server(env=env, args=args)
        servers.append(s)
        return s

    yield start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for s in servers:
        s.stop()
        if failed:
            print(f"--- ringgate stderr (port {s.port}) ---\n{s.log()}")


@pytest.fixture
def server(start_server):
    """A server with the default configuration."""
    return start_server()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, "rep_" + rep.when, rep)
    return rep
