"""permessage-deflate (RFC 7692) against the real binary, seen by real clients.

- The Python `websockets` client (it offers `permessage-deflate;
  client_max_window_bits` by default) on /echo in every mode (off, shared,
  dedicated with windows 15 and 10): what was negotiated, and echoes of text and
  binary messages of many sizes, 50 of them in a row, fragmented ones, messages
  of megabytes, 16 clients at once.
- `RawWs`, a client on a plain socket written here, for what a library hides:
  the bytes on the wire (RSV1, compressed sizes, the threshold, context
  takeover, levels), offers the server must decline or answer in a given way
  (and each route's own mode), and attacks: a zip bomb (1009, bounded
  memory), the exact size limit, invalid deflate data and invalid UTF-8 after
  inflating (1007), RSV bits where they do not belong (1002), fragmented and
  interleaved compressed messages.
- The realtime service: room messages to members with and without
  compression, with different windows; its inflated size limit.
- Headless Chromium (skipped without it): a page's WebSocket negotiates
  permessage-deflate and echoes.

Settings: WS_ENABLE_COMPRESSION, WS_COMPRESSION_MODE, WS_COMPRESSION_WINDOW_BITS,
WS_COMPRESSION_THRESHOLD, WS_COMPRESSION_LEVEL, RINGGATE_ECHO_COMPRESSION,
RINGGATE_REALTIME_COMPRESSION, OCPP_COMPRESSION (README). Every wait is bounded
by TIMEOUT; nothing asserts on timing.
"""

import base64
import contextlib
import functools
import json
import os
import random
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

from harness import metric, scrape

TIMEOUT = 10.0
MiB = 1 << 20

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
TAIL = b"\x00\x00\xff\xff"  # the empty stored block RFC 7692 strips from every message

DEFLATE = "permessage-deflate"
WEBSOCKETS_OFFER = "permessage-deflate; client_max_window_bits"  # what websockets sends by default


# --- modes ---------------------------------------------------------------------------


class Mode(NamedTuple):
    env: dict
    kind: str  # "off", "shared" or "dedicated"
    window: int = 15


MODES = {
    "off": Mode({"WS_ENABLE_COMPRESSION": "false"}, "off"),
    "shared": Mode({"WS_ENABLE_COMPRESSION": "true"}, "shared"),
    "dedicated-15": Mode(
        {"WS_ENABLE_COMPRESSION": "true", "WS_COMPRESSION_MODE": "dedicated", "WS_COMPRESSION_WINDOW_BITS": "15"},
        "dedicated",
        15,
    ),
    "dedicated-10": Mode(
        {"WS_ENABLE_COMPRESSION": "true", "WS_COMPRESSION_MODE": "dedicated", "WS_COMPRESSION_WINDOW_BITS": "10"},
        "dedicated",
        10,
    ),
}
COMPRESSING = ["shared", "dedicated-15", "dedicated-10"]


def start(start_server, mode, **env):
    """A server in `mode` (a MODES key) with `env` on top."""
    return start_server(env={**MODES[mode].env, **{k: str(v) for k, v in env.items()}})


# --- Sec-WebSocket-Extensions ---------------------------------------------------------


def split_outside_quotes(text, sep):
    parts, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_extensions(value):
    """[(name, {param: value or None})] of a Sec-WebSocket-Extensions value; a
    parameter named twice fails the test (an answer must not do that)."""
    result = []
    for ext in split_outside_quotes(value, ","):
        name, *params = [p.strip() for p in split_outside_quotes(ext, ";")]
        got = {}
        for param in params:
            key, eq, val = param.partition("=")
            key = key.strip().lower()
            assert key not in got, f"parameter {key} twice in {value!r}"
            got[key] = val.strip().strip('"') if eq else None
        result.append((name.lower(), got))
    return result


def answered_params(value):
    """The parameters of the one permessage-deflate in an answer; None if there is no answer."""
    if value is None:
        return None
    exts = parse_extensions(value)
    assert [name for name, _ in exts] == [DEFLATE], f"unexpected answer {value!r}"
    return exts[0][1]


def expected_answer(mode, offer):
    """What `mode` (a Mode) answers to the offer whose parameters are `offer`;
    None: declined (or compression off)."""
    if mode.kind == "off":
        return None
    if mode.kind == "shared":
        want = {"server_no_context_takeover": None, "client_no_context_takeover": None}
        if "server_max_window_bits" in offer:
            want["server_max_window_bits"] = offer["server_max_window_bits"]
        return want
    want = {}
    if "server_no_context_takeover" in offer:
        want["server_no_context_takeover"] = None
    if "client_max_window_bits" in offer:
        want["client_max_window_bits"] = str(min(int(offer["client_max_window_bits"] or 15), mode.window))
    if "server_max_window_bits" in offer:
        want["server_max_window_bits"] = str(min(int(offer["server_max_window_bits"]), mode.window))
    return want


def check_answer(mode, offer, answer):
    """Asserts the server's answer (its parameters, or None) to `offer` in `mode`.
    Dedicated mode may add what RFC 7692 lets a server add unasked:
    server_max_window_bits (at most its window), and client_no_context_takeover
    when the client offered it."""
    want = expected_answer(mode, offer)
    if answer is not None and mode.kind == "dedicated":
        answer = dict(answer)
        if "server_max_window_bits" not in offer and "server_max_window_bits" in answer:
            assert int(answer.pop("server_max_window_bits")) <= mode.window, answer
        if "client_no_context_takeover" in offer:
            answer.pop("client_no_context_takeover", None)
    assert answer == want, f"offer {offer}: answered {answer}, expected {want}"


# --- payloads ------------------------------------------------------------------------


def json_text(size, seed=0):
    """Exactly `size` characters of compressible, JSON-like text."""
    rnd = random.Random(seed)
    records, total = [], 0
    while total < size:
        rec = json.dumps(
            {"id": rnd.randrange(10**6), "user": f"guest-{rnd.randrange(1000)}", "room": "general",
             "content": "the quick brown fox jumps over the lazy dog", "n": rnd.random()}
        )
        records.append(rec)
        total += len(rec) + 1
    return ("[" + ",".join(records))[:size]


def random_bytes(size, seed=0):
    return random.Random(seed).randbytes(size)


def far_repeats(size, seed=0):
    """Random 3000-byte blocks, each written twice: every match is 3000 bytes
    back, past a 10-bit window, so a wrong window size breaks inflating."""
    rnd = random.Random(seed)
    out = b""
    while len(out) < size:
        block = rnd.randbytes(3000)
        out += block + block
    return out[:size]


def echo_payloads():
    """Text and binary messages of every interesting size."""
    out = []
    for size in [0, 10, 127, 128, 4096, 200 * 1024]:
        out += [json_text(size, seed=size), random_bytes(size, seed=size), far_repeats(size, seed=size)]
    return out


def in_a_row(count=50):
    """Messages that share a lot with the ones before them (context takeover
    makes them small and must stay in sync on both sides)."""
    msgs = []
    for i in range(count):
        if i % 3 == 2:
            msgs.append(far_repeats(1000 + 97 * i, seed=i % 4))
        else:
            msgs.append(json_text(200 + 131 * i, seed=i % 5))
    return msgs


def deflate_once(data, wbits=15, level=zlib.Z_DEFAULT_COMPRESSION):
    """One message compressed as RFC 7692 sends it: raw deflate, sync flush, tail stripped."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


@functools.lru_cache(maxsize=None)
def zip_bomb():
    """About 1 GiB of zeros compressed (once per session) at level 9: about 1 MiB."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(MiB)
    out = [c.compress(chunk) for _ in range(1024)]
    out.append(c.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(out)[:-4]


# --- a raw client --------------------------------------------------------------------


class Frame(NamedTuple):
    fin: bool
    rsv: int  # the RSV bits as they sit in the first byte (RSV1 | RSV2 | RSV3)
    opcode: int
    payload: bytes


@dataclass
class Message:
    opcode: int
    data: bytes
    rsv1: bool  # the server compressed it
    wire: int  # payload bytes on the wire (all frames)

    @property
    def text(self):
        assert self.opcode == TEXT, f"expected a text message, got opcode {self.opcode}"
        return self.data.decode()


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed by the server: {code} {reason!r}")
        self.code, self.reason = code, reason


def mask(data, key):
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode, payload=b"", fin=True, rsv=0):
    """A masked client frame."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return head + key + mask(payload, key)


class RawWs:
    """A WebSocket client on a plain socket: exact frames out, every frame in.

    `offers` are Sec-WebSocket-Extensions header lines. When the server
    accepts permessage-deflate, `send` compresses and `recv_message`
    inflates with what it answered: the windows it announced (a server
    that compresses with a larger window than it said breaks inflating),
    and context takeover unless it was turned off."""

    def __init__(self, server, offers=(), path="/echo", headers=()):
        self.sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        self.buf = b""
        self.controls = []  # control frames other than close, as received
        self.senders = []
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {server.host}:{server.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
            "Sec-WebSocket-Version: 13",
            *[f"Sec-WebSocket-Extensions: {offer}" for offer in offers],
            *[f"{name}: {value}" for name, value in headers],
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status, *fields = head.decode("latin-1").split("\r\n")
        self.status = int(status.split()[1])
        self.headers = {}
        for field in fields:
            name, _, value = field.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())
        ext = self.headers.get("sec-websocket-extensions")
        self.extension = ", ".join(ext) if ext else None
        self.params = answered_params(self.extension)
        if self.params is not None:
            p = self.params
            self.server_window = int(p.get("server_max_window_bits") or 15)
            self.client_window = int(p.get("client_max_window_bits") or 15)
            self.server_takeover = "server_no_context_takeover" not in p
            self.client_takeover = "client_no_context_takeover" not in p
            self.inflater = zlib.decompressobj(wbits=-self.server_window)
            self.deflater = zlib.compressobj(wbits=-self.client_window)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        finally:
            for t in self.senders:
                t.join(TIMEOUT)

    # --- out

    def send_frame(self, opcode, payload=b"", *, fin=True, rsv=0):
        """Sends one frame."""
        self.sock.sendall(encode_frame(opcode, payload, fin, rsv))

    def send_in_background(self, data):
        """Writes `data` from a thread, so that a large message cannot
        deadlock against a server that stopped reading to close."""

        def send():
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the server closed first: what it sent is read by the test

        t = threading.Thread(target=send, daemon=True)
        t.start()
        self.senders.append(t)

    def deflate(self, data):
        """`data` compressed as the next message of this connection."""
        if not self.client_takeover:
            self.deflater = zlib.compressobj(wbits=-self.client_window)
        out = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(TAIL)
        return out[:-4]

    def send(self, data, *, compress=None, fragments=1, background=False):
        """One message (str: text), compressed if negotiated (or `compress`),
        in `fragments` frames."""
        opcode = TEXT if isinstance(data, str) else BINARY
        raw = data.encode() if isinstance(data, str) else data
        if compress is None:
            compress = self.params is not None
        payload = self.deflate(raw) if compress else raw
        self.send_payload(opcode, payload, rsv=RSV1 if compress else 0, fragments=fragments, background=background)

    def send_payload(self, opcode, payload, *, rsv=0, fragments=1, background=False):
        """`payload` as is, in `fragments` frames; `rsv` on the first only;
        written in one go (from a thread with `background`)."""
        step = -(-len(payload) // fragments) if payload else 1
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)] or [b""]
        data = b"".join(
            encode_frame(opcode if i == 0 else CONT, piece, fin=i == len(pieces) - 1, rsv=rsv if i == 0 else 0)
            for i, piece in enumerate(pieces)
        )
        if background:
            self.send_in_background(data)
        else:
            self.sock.sendall(data)

    # --- in

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise EOFError("the server closed TCP")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "a server frame must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(self._take(2), "big")
        elif n == 127:
            n = int.from_bytes(self._take(8), "big")
        return Frame(bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, self._take(n))

    def recv_message(self):
        """The next data message, inflated if the server compressed it. Other
        control frames go to `controls`; a close frame raises `Closed`."""
        frames = []
        while not frames or not frames[-1].fin:
            f = self.recv_frame()
            if f.opcode >= 8:
                assert f.rsv == 0, f"server set RSV bits {f.rsv:#x} on a control frame (opcode {f.opcode})"
                if f.opcode == CLOSE:
                    code = int.from_bytes(f.payload[:2], "big") if len(f.payload) >= 2 else None
                    raise Closed(code, f.payload[2:].decode(errors="replace"))
                self.controls.append(f)
                continue
            assert (f.opcode == CONT) == bool(frames), f"bad opcode sequence: {f.opcode} after {len(frames)} frames"
            assert f.rsv & (RSV2 | RSV3) == 0, f"server set RSV2/RSV3: {f.rsv:#x}"
            if frames:
                assert not f.rsv & RSV1, "server set RSV1 on a continuation frame"
            frames.append(f)
        first = frames[0]
        payload = b"".join(f.payload for f in frames)
        compressed = bool(first.rsv & RSV1)
        if compressed:
            assert self.params is not None, "RSV1 from the server without a negotiated extension"
            if not self.server_takeover:
                self.inflater = zlib.decompressobj(wbits=-self.server_window)
            payload = self.inflater.decompress(payload + TAIL)
            assert not self.inflater.unconsumed_tail
        return Message(first.opcode, payload, compressed, sum(len(f.payload) for f in frames))

    def echo(self, data, **send_kw):
        """Sends `data`, insists on its echo; returns the echo's Message."""
        self.send(data, **send_kw)
        msg = self.recv_message()
        want = data.encode() if isinstance(data, str) else data
        assert msg.opcode == (TEXT if isinstance(data, str) else BINARY)
        assert msg.data == want, f"echo differs: sent {len(want)} bytes, got {len(msg.data)}"
        return msg

    def ping(self, payload):
        """Sends a ping and waits for its pong: the server has read all sent before."""
        self.send_frame(PING, payload)
        while True:
            f = self.recv_frame()
            assert f.opcode in (PING, PONG), f"a frame of opcode {f.opcode} while waiting for a pong"
            if f.opcode == PONG and f.payload == payload:
                return

    def expect_close(self):
        """Reads until the server's close frame; returns its code (None: TCP
        closed without one). Data messages before it are dropped."""
        try:
            while True:
                self.recv_message()
        except Closed as c:
            return c.code
        except (EOFError, ConnectionResetError):
            return None


def offer_params(offer):
    """The parameters of a single permessage-deflate offer."""
    ((name, params),) = parse_extensions(offer)
    assert name == DEFLATE
    return params


# --- websockets client: negotiation and echo, every mode -----------------------------


def ws_connect(server, path="/echo", **kw):
    kw.setdefault("open_timeout", TIMEOUT)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("ping_interval", None)
    kw.setdefault("proxy", None)
    kw.setdefault("max_queue", 128)
    return connect(server.url(path), **kw)


@pytest.mark.parametrize("mode", list(MODES))
def test_websockets_client_negotiates_and_echoes(start_server, mode):
    server = start(start_server, mode)
    with ws_connect(server) as ws:
        header = ws.response.headers.get("Sec-WebSocket-Extensions")
        check_answer(MODES[mode], offer_params(WEBSOCKETS_OFFER), answered_params(header))
        extensions = ws.protocol.extensions
        if mode == "off":
            assert extensions == []
        else:
            (pmd,) = extensions
            assert pmd.name == DEFLATE
            shared = mode == "shared"
            assert (pmd.remote_no_context_takeover, pmd.local_no_context_takeover) == (shared, shared)
            assert pmd.local_max_window_bits == MODES[mode].window
        for payload in echo_payloads():
            ws.send(payload)
            assert ws.recv(timeout=TIMEOUT) == payload, f"{type(payload).__name__} of {len(payload)}"
        msgs = in_a_row(50)
        for m in msgs:
            ws.send(m)
        for i, m in enumerate(msgs):
            assert ws.recv(timeout=TIMEOUT) == m, f"message {i} of 50"
        # websockets sends an iterable as one fragmented message, compressed
        # as one stream with RSV1 on the first frame
        for parts in [[json_text(3000, seed=1), json_text(10, seed=2), json_text(9000, seed=3)],
                      [far_repeats(5000), b"", random_bytes(700), far_repeats(6000, seed=1)]]:
            ws.send(parts)
            assert ws.recv(timeout=TIMEOUT) == parts[0][:0].join(parts)


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_metrics_count_compressed_connections_and_messages(start_server, mode):
    # Two compressing websockets clients and a plain one each echo three 1 KiB
    # texts: /metrics counts the two compressed connections while they are open,
    # and exactly the messages compressed each way: the plain client's go
    # uncompressed, and the server sends 40-byte ones plain (under the 128-byte
    # threshold) while websockets compresses everything it sends.
    server = start(start_server, mode)

    def deflate_figures():
        values = scrape(server)
        return {
            "open": metric(values, "websocket_compressed_connections", route="/echo"),
            **{f"{op} messages": metric(values, "websocket_deflate_messages_total", op=op)
               for op in ("compress", "inflate")},
            **{f"{op} {side}": metric(values, "websocket_deflate_bytes_total", op=op, side=side)
               for op in ("compress", "inflate") for side in ("plain", "compressed")},
        }

    before = deflate_figures()
    assert before == dict.fromkeys(before, 0), before
    texts = [json_text(1024, seed=i) for i in range(3)]
    with ws_connect(server) as a, ws_connect(server) as b, ws_connect(server, compression=None) as plain:
        for ws in (a, b, plain):
            for text in texts + ["x" * 40]:
                ws.send(text)
                assert ws.recv(timeout=TIMEOUT) == text
        during = deflate_figures()
    assert during["open"] == 2
    assert (during["compress messages"], during["inflate messages"]) == (6, 8), during
    assert (during["compress plain"], during["inflate plain"]) == (6 * 1024, 6 * 1024 + 2 * 40), during
    for op in ("compress", "inflate"):
        assert 0 < during[f"{op} compressed"] < 6 * 1024 // 2, during
    deadline = time.monotonic() + TIMEOUT
    while deflate_figures()["open"] != 0:
        assert time.monotonic() < deadline, "the compressed connections were still counted after closing"
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["dedicated-10", "dedicated-15"])
def test_dedicated_mode_with_a_client_that_cannot_limit_its_window(start_server, mode):
    # Offered without client_max_window_bits, the answer must not carry it
    # (RFC 7692 7.1.2.2), so the client compresses with 15 bits whatever the
    # server's window: the server must decline, or inflate 15-bit windows.
    # The far repeats sit 3000 bytes back, past a 10-bit window.
    server = start(start_server, mode)
    bare = [ClientPerMessageDeflateFactory(client_max_window_bits=None)]
    with ws_connect(server, extensions=bare) as ws:
        header = ws.response.headers.get("Sec-WebSocket-Extensions")
        if header is not None:  # declining is fine too
            check_answer(MODES[mode], {}, answered_params(header))
        for i in range(5):
            data = far_repeats(12_000, seed=i % 2)
            ws.send(data)
            assert ws.recv(timeout=TIMEOUT) == data, f"message {i}"


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_large_messages(start_server, mode):
    server = start(start_server, mode)
    with ws_connect(server, max_size=None) as ws:
        for data in [json_text(4 * MiB, seed=9), random_bytes(2 * MiB, seed=9), far_repeats(3 * MiB)]:
            ws.send(data)
            assert ws.recv(timeout=TIMEOUT) == data, f"{type(data).__name__} of {len(data)}"


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_many_clients_at_once(start_server, mode):
    # 16 websockets clients on two shards, each echoing 40 messages (some
    # fragmented) at the same time: shared codecs serve them all in turn,
    # dedicated ones each keep their own context.
    server = start(start_server, mode, RINGGATE_SHARDS=2)
    errors = []

    def client(n):
        try:
            with ws_connect(server) as ws:
                for i in range(40):
                    data = json_text(500 + 97 * ((n + i) % 50), seed=n * 100 + i)
                    if i % 4 == 3:
                        ws.send([data[:200], data[200:]])
                    else:
                        ws.send(data if i % 2 else data.encode())
                    got = ws.recv(timeout=TIMEOUT)
                    assert got == (data if i % 4 == 3 or i % 2 else data.encode()), f"client {n}, message {i}"
        except Exception as e:  # reported below
            errors.append(f"client {n}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not errors, "\n".join(errors)


# --- what the server puts on the wire ------------------------------------------------


@pytest.mark.parametrize("mode", COMPRESSING)
def test_large_text_goes_out_compressed(start_server, mode):
    server = start(start_server, mode)
    with RawWs(server, [DEFLATE]) as ws:
        assert ws.status == 101 and ws.params is not None
        text = json_text(64 * 1024)
        msg = ws.echo(text)
        assert msg.rsv1, "64 KiB of JSON came back uncompressed"
        assert msg.wire < len(text) // 4, f"64 KiB of JSON took {msg.wire} bytes"
        small = ws.echo("twenty bytes, really")
        assert not small.rsv1 and small.wire == 20, "a 20-byte message (under the threshold) was compressed"


@pytest.mark.parametrize(
    "threshold,cases",
    [
        # (size of a compressible text, sent compressed?)
        (None, [(20, False), (127, False), (128, True), (4096, True)]),
        ("0", [(20, True), (127, True), (4096, True)]),
        ("1KiB", [(127, False), (1023, False), (1024, True)]),
    ],
    ids=["default-128", "0", "1KiB"],
)
def test_threshold(start_server, threshold, cases):
    env = {} if threshold is None else {"WS_COMPRESSION_THRESHOLD": threshold}
    server = start(start_server, "shared", **env)
    with RawWs(server, [DEFLATE]) as ws:
        got = [(size, ws.echo("a" * size).rsv1) for size, _ in cases]
        assert got == cases


@pytest.mark.parametrize(
    "mode,offer,takeover",
    [
        ("shared", WEBSOCKETS_OFFER, False),
        ("dedicated-15", WEBSOCKETS_OFFER, True),
        ("dedicated-15", f"{WEBSOCKETS_OFFER}; server_no_context_takeover", False),
    ],
    ids=["shared", "dedicated", "dedicated-server_no_context_takeover"],
)
def test_context_takeover_on_the_wire(start_server, mode, offer, takeover):
    # The same 2 KiB (hex digits: compressible, but not by repetition) twice:
    # with context takeover the second echo refers back to the first and
    # is tiny; without it, both cost the same.
    server = start(start_server, mode)
    with RawWs(server, [offer]) as ws:
        assert ws.server_takeover == takeover
        text = random_bytes(1024, seed=7).hex()
        first, second = ws.echo(text), ws.echo(text)
        assert first.rsv1 and second.rsv1
        if takeover:
            assert second.wire < first.wire // 10, (first.wire, second.wire)
        else:
            assert second.wire == first.wire, (first.wire, second.wire)
        # the client's side of it: the same message compressed against its
        # previous copy (dedicated) or alone (shared) inflates on the server
        for i in range(3):
            ws.echo(text)
            ws.echo(far_repeats(9000, seed=i))


@pytest.mark.parametrize("mode", COMPRESSING)
def test_plain_and_compressed_messages_mix(start_server, mode):
    # RSV1 is per message: uncompressed messages in between must not upset
    # the inflater's context.
    server = start(start_server, mode)
    with RawWs(server, [WEBSOCKETS_OFFER]) as ws:
        for i in range(6):
            ws.echo(json_text(3000, seed=i), compress=i % 2 == 0)
            ws.echo(far_repeats(7000, seed=i), compress=i % 3 != 0)


# --- offers --------------------------------------------------------------------------

# Offers the server must decline (RFC 7692 7: an unknown parameter, an invalid
# value, a parameter twice; a window of 8 cannot be honoured with zlib).
DECLINED = [
    "permessage-deflate; bogus_param",
    "permessage-deflate; server_max_window_bits=8",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=abc",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover=1",
    "x-webkit-deflate-frame",
]

# Valid offers: (the header lines, the offer whose answer is expected).
ACCEPTED = [
    ("permessage-deflate", "permessage-deflate"),
    (WEBSOCKETS_OFFER, WEBSOCKETS_OFFER),
    ("permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=12"),
    ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
     "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9"),
    ("permessage-deflate;server_no_context_takeover", "permessage-deflate; server_no_context_takeover"),
    ("permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"),
    ('permessage-deflate; server_max_window_bits="11"', "permessage-deflate; server_max_window_bits=11"),
    # the first offer is invalid, the second is answered
    ("permessage-deflate; bogus_param, permessage-deflate; server_max_window_bits=12",
     "permessage-deflate; server_max_window_bits=12"),
    ("permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
     WEBSOCKETS_OFFER),
    ("x-webkit-deflate-frame, permessage-deflate", "permessage-deflate"),
    # two header lines are one list
    (["permessage-deflate; server_max_window_bits=16", "permessage-deflate; server_max_window_bits=13"],
     "permessage-deflate; server_max_window_bits=13"),
]


@pytest.mark.parametrize("mode", ["shared", "dedicated-10"])
def test_invalid_offers_are_declined(start_server, mode):
    server = start(start_server, mode)
    answers = {}
    for offer in DECLINED:
        with RawWs(server, [offer]) as ws:
            answers[offer] = (ws.status, ws.extension)
            if ws.status == 101:
                msg = ws.echo(json_text(4096), compress=False)
                assert not msg.rsv1
    assert answers == {offer: (101, None) for offer in DECLINED}


@pytest.mark.parametrize("mode", ["shared", "dedicated-10", "dedicated-15"])
def test_valid_offers_get_the_right_answer_and_work(start_server, mode):
    # Each answer is checked, then honoured: RawWs inflates with the window
    # the server announced and compresses with the one it was given.
    server = start(start_server, mode)
    failures = []
    for lines, answered in ACCEPTED:
        lines = [lines] if isinstance(lines, str) else lines
        with RawWs(server, lines) as ws:
            try:
                assert ws.status == 101
                check_answer(MODES[mode], offer_params(answered), ws.params)
                for i in range(3):
                    ws.echo(far_repeats(9000, seed=i))  # compressed or not, as the server likes
                    assert ws.echo(json_text(5000, seed=i)).rsv1
            except (AssertionError, Closed, EOFError, OSError, zlib.error) as e:
                failures.append(f"{lines}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


def test_compression_off_declines_every_offer(start_server):
    server = start(start_server, "off")
    for lines, _ in ACCEPTED:
        lines = [lines] if isinstance(lines, str) else lines
        with RawWs(server, lines) as ws:
            assert (ws.status, ws.extension) == (101, None), lines
            assert not ws.echo(json_text(4096), compress=False).rsv1


ROUTES = {"/echo": (), "/ws": (), "/ocpp/CP-1": [("Sec-WebSocket-Protocol", "ocpp1.6")]}


@pytest.mark.parametrize(
    "env,answers",
    [
        # a route's own mode beats WS_ENABLE_COMPRESSION, both ways
        ({"WS_ENABLE_COMPRESSION": "true", "RINGGATE_ECHO_COMPRESSION": "off"},
         {"/echo": None, "/ws": "shared", "/ocpp/CP-1": "shared"}),
        ({"RINGGATE_ECHO_COMPRESSION": "dedicated", "WS_COMPRESSION_WINDOW_BITS": "12"},
         {"/echo": "dedicated", "/ws": None, "/ocpp/CP-1": None}),
        ({"WS_ENABLE_COMPRESSION": "true", "WS_COMPRESSION_MODE": "dedicated", "RINGGATE_REALTIME_COMPRESSION": "shared"},
         {"/echo": "dedicated", "/ws": "shared", "/ocpp/CP-1": "dedicated"}),
        ({"RINGGATE_ECHO_COMPRESSION": "default", "RINGGATE_REALTIME_COMPRESSION": "dedicated",
          "OCPP_COMPRESSION": "shared"},
         {"/echo": None, "/ws": "dedicated", "/ocpp/CP-1": "shared"}),
        ({"WS_ENABLE_COMPRESSION": "true", "OCPP_COMPRESSION": "off"},
         {"/echo": "shared", "/ws": "shared", "/ocpp/CP-1": None}),
    ],
    ids=["echo-off", "echo-dedicated", "realtime-shared", "realtime-dedicated-ocpp-shared", "ocpp-off"],
)
def test_route_modes(start_server, env, answers):
    server = start_server(env={"JWT_SECRET": "", **env})
    got = {}
    for path in answers:
        with RawWs(server, [WEBSOCKETS_OFFER], path=path, headers=ROUTES[path]) as ws:
            assert ws.status == 101, path
            p = ws.params
            got[path] = None if p is None else "shared" if "server_no_context_takeover" in p else "dedicated"
            if got[path] == "dedicated":
                assert p.get("client_max_window_bits") == env.get("WS_COMPRESSION_WINDOW_BITS", "15"), path
    assert got == answers


@pytest.mark.parametrize("level", ["0", "9"])
def test_compression_levels(start_server, level):
    # Level 0 stores (compressing makes nothing smaller); 9 squeezes hardest.
    server = start(start_server, "dedicated-15", WS_COMPRESSION_LEVEL=level)
    with RawWs(server, [DEFLATE]) as ws:
        for i in range(3):
            text = ws.echo(json_text(20_000, seed=i))
            ws.echo(far_repeats(20_000, seed=i))
            ws.echo(random_bytes(5000, seed=i))
            if level == "9":
                assert text.rsv1 and text.wire < 20_000 // 4


# --- attacks and protocol errors -----------------------------------------------------


def memory_kib(server, field):
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{server.proc.pid}/status")


def reset_peak_rss(server):
    """Resets VmHWM (Linux: clear_refs 5); False if the kernel refused."""
    try:
        with open(f"/proc/{server.proc.pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def bystander_echoes(ws, seed=0):
    """A connection opened earlier on the same shard still echoes compressed messages."""
    for i in range(3):
        assert ws.echo(json_text(8000, seed=seed + i)).rsv1
        ws.echo(far_repeats(7000, seed=seed + i))


@pytest.mark.parametrize("fragments", [1, 16], ids=["one-frame", "16-fragments"])
@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_zip_bomb_is_closed_with_1009_in_bounded_memory(start_server, mode, fragments):
    bomb = zip_bomb()
    assert len(bomb) < MiB, "the bomb itself must be under the limit: only inflating it tells"
    server = start(start_server, mode, RINGGATE_MAX_MESSAGE_SIZE="1MiB", RINGGATE_SHARDS=1)
    with RawWs(server, [DEFLATE]) as bystander, RawWs(server, [DEFLATE]) as attacker:
        bystander_echoes(bystander)
        attacker.echo(bytes(MiB))  # inflating to exactly the limit is fine
        peak = reset_peak_rss(server)
        rss_before = memory_kib(server, "VmRSS")
        attacker.send_payload(BINARY, bomb, rsv=RSV1, fragments=fragments, background=True)
        assert attacker.expect_close() == 1009
        rss_after = memory_kib(server, "VmRSS")
        assert rss_after - rss_before < 64 * 1024, f"RSS grew {rss_before} -> {rss_after} KiB"
        if peak:
            hwm = memory_kib(server, "VmHWM")
            assert hwm - rss_before < 64 * 1024, f"peak RSS {hwm} KiB, from {rss_before} KiB"
        bystander_echoes(bystander, seed=10)


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
@pytest.mark.parametrize("kind", ["compressible", "incompressible"])
def test_inflated_size_limit_is_exact(start_server, mode, kind):
    # RINGGATE_MAX_MESSAGE_SIZE bounds the message: one of exactly the limit
    # is echoed, one byte more is closed with 1009, however well it
    # compresses. Deflate makes random bytes a little larger (65536 take
    # about 65557), and clients such as websockets compress every message.
    data = (lambda n: b"a" * n) if kind == "compressible" else random_bytes
    server = start(start_server, mode, RINGGATE_MAX_MESSAGE_SIZE="64KiB")
    with RawWs(server, [DEFLATE]) as ok, RawWs(server, [DEFLATE]) as over:
        ok.echo(data(65536))
        ok.echo(data(65536 - 100))
        over.send(data(65537), background=True)
        assert over.expect_close() == 1009


def refers_before_the_start():
    """Deflate data whose matches point into a preset dictionary the server
    never saw (the connection's first message): "distance too far back"."""
    c = zlib.compressobj(wbits=-15, zdict=b"ringgate permessage-deflate " * 8)
    return (c.compress(b"ringgate permessage-deflate " * 4) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


INVALID_DEFLATE = {
    "0xff-x10": b"\xff" * 10,  # BTYPE 11, reserved
    "stored-len-mismatch": b"\x00\x05\x00\x00\x00hello",  # LEN 5, NLEN 0
    "distance-too-far-back": refers_before_the_start(),
}


@pytest.mark.parametrize("data", list(INVALID_DEFLATE))
@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_invalid_deflate_data_is_closed_with_1007(start_server, mode, data):
    server = start(start_server, mode, RINGGATE_SHARDS=1)
    with RawWs(server, [DEFLATE]) as bystander, RawWs(server, [DEFLATE]) as ws:
        bystander_echoes(bystander)
        ws.send_frame(BINARY, INVALID_DEFLATE[data], rsv=RSV1)
        assert ws.expect_close() == 1007
        bystander_echoes(bystander, seed=5)


@pytest.mark.parametrize(
    "raw",
    [b"bad \xff\xfe utf-8", "κόσμε".encode() + "é".encode()[:1], b"\xed\xa0\x80 surrogate"],
    ids=["ff-fe", "truncated-at-the-end", "surrogate"],
)
@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_invalid_utf8_after_inflating_is_closed_with_1007(start_server, mode, raw):
    server = start(start_server, mode)
    with RawWs(server, [DEFLATE]) as ws:
        ws.echo("κόσμε " * 100)
        ws.send_payload(TEXT, ws.deflate(raw), rsv=RSV1)
        assert ws.expect_close() == 1007


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_utf8_split_across_compressed_fragments(start_server, mode):
    # Multi-byte characters cut anywhere by 40 fragments of compressed data.
    server = start(start_server, mode)
    with RawWs(server, [DEFLATE]) as ws:
        text = "κόσμε 世界 🦀 " * 3000
        ws.echo(text, fragments=40)
        ws.echo(text[:5000], fragments=7)


def rsv1_on_continuation(ws, first_compressed):
    data = ws.deflate(json_text(2000).encode()) if first_compressed else json_text(2000).encode()
    half = len(data) // 2
    ws.send_frame(TEXT, data[:half], fin=False, rsv=RSV1 if first_compressed else 0)
    ws.send_frame(CONT, data[half:], rsv=RSV1)


BAD_RSV = {
    "rsv1-on-continuation": lambda ws: rsv1_on_continuation(ws, True),
    "rsv1-on-continuation-of-plain": lambda ws: rsv1_on_continuation(ws, False),
    "rsv1-on-ping": lambda ws: ws.send_frame(PING, b"hi", rsv=RSV1),
    "rsv1-on-pong": lambda ws: ws.send_frame(PONG, b"hi", rsv=RSV1),
    "rsv1-on-close": lambda ws: ws.send_frame(CLOSE, (1000).to_bytes(2, "big"), rsv=RSV1),
    "rsv2-on-text": lambda ws: ws.send_frame(TEXT, b"hello", rsv=RSV2),
    "rsv3-on-compressed-text": lambda ws: ws.send_frame(TEXT, deflate_once(b"hello"), rsv=RSV1 | RSV3),
}


@pytest.mark.parametrize("case", list(BAD_RSV))
def test_misplaced_rsv_bits_are_closed_with_1002(start_server, case):
    server = start(start_server, "shared")
    with RawWs(server, [DEFLATE]) as ws:
        assert ws.params is not None
        ws.echo("before")
        BAD_RSV[case](ws)
        assert ws.expect_close() == 1002


@pytest.mark.parametrize("mode,offers", [("shared", []), ("off", [DEFLATE])], ids=["not-offered", "declined"])
def test_rsv1_without_negotiation_is_closed_with_1002(start_server, mode, offers):
    server = start(start_server, mode)
    with RawWs(server, offers) as ws:
        assert ws.extension is None
        ws.echo("plain")
        ws.send_frame(TEXT, deflate_once(b"hello"), rsv=RSV1)
        assert ws.expect_close() == 1002


@pytest.mark.parametrize("mode", COMPRESSING)
def test_fragmented_compressed_message_with_a_ping_inside(start_server, mode):
    server = start(start_server, mode)
    with RawWs(server, [WEBSOCKETS_OFFER]) as ws:
        for i, text in enumerate([json_text(30_000, seed=1), json_text(30_000, seed=1), "short one"]):
            data = ws.deflate(text.encode())
            cut = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
            ws.send_frame(TEXT, data[cut[0] : cut[1]], fin=False, rsv=RSV1)
            ws.send_frame(PING, b"ping %d" % i)
            ws.send_frame(CONT, data[cut[1] : cut[2]], fin=False)
            ws.send_frame(CONT, data[cut[2] : cut[3]])
            msg = ws.recv_message()
            assert msg.text == text
            assert [(f.opcode, f.payload) for f in ws.controls] == [(PONG, b"ping %d" % i)]
            ws.controls.clear()


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_empty_compressed_messages(start_server, mode):
    # The empty message compressed with a sync flush is a single 0x00 (an
    # empty stored block, its 00 00 ff ff stripped); an RSV1 frame with no
    # payload at all is taken as an empty message too, and must not disturb
    # the stream's next message (with context takeover it once did).
    server = start(start_server, mode)
    with RawWs(server, [DEFLATE]) as ws:
        for payload in [b"", b"\x00", ws.deflate(b""), b"", ws.deflate(b"")]:
            ws.send_frame(TEXT, payload, rsv=RSV1)
            msg = ws.recv_message()
            assert (msg.opcode, msg.data) == (TEXT, b""), payload
        ws.echo(json_text(1000))


def test_message_ending_in_a_final_block(start_server):
    # RFC 7692 7.2.3 lets a sender end a message with a BFINAL block instead
    # of a sync flush; without context takeover the receiver must cope.
    server = start(start_server, "shared")
    with RawWs(server, [DEFLATE]) as ws:
        for text in ["Hello", json_text(5000)]:
            c = zlib.compressobj(wbits=-15)
            ws.send_frame(TEXT, c.compress(text.encode()) + c.flush(zlib.Z_FINISH), rsv=RSV1)
            assert ws.recv_message().text == text
        ws.echo("after")


def test_rfc7692_hello_example(start_server):
    # RFC 7692 7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
    server = start(start_server, "shared")
    with RawWs(server, [DEFLATE]) as ws:
        ws.send_frame(TEXT, bytes.fromhex("f248cdc9c90700"), rsv=RSV1)
        assert ws.recv_message().text == "Hello"


@pytest.mark.parametrize("split", ["between-fragments", "inside-a-frame"])
@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_interleaved_compressed_messages_on_one_shard(start_server, mode, split):
    # Shared mode shares the shard's inflater: a message that arrives in
    # pieces on one connection must survive another connection's compressed
    # messages in between. A ping answered after each piece proves the server read it.
    server = start(start_server, mode, RINGGATE_SHARDS=1)
    with RawWs(server, [DEFLATE]) as a, RawWs(server, [DEFLATE]) as b:
        text = json_text(300_000, seed=3)
        data = a.deflate(text.encode())
        third = len(data) // 3
        if split == "between-fragments":
            a.send_frame(TEXT, data[:third], fin=False, rsv=RSV1)
            a.ping(b"1")
            b.echo(json_text(50_000, seed=4))
            a.send_frame(CONT, data[third : 2 * third], fin=False)
            a.ping(b"2")
            b.echo(far_repeats(20_000, seed=5))
            a.send_frame(CONT, data[2 * third :])
        else:
            frame = encode_frame(TEXT, data, rsv=RSV1)
            a.sock.sendall(frame[: len(frame) // 2])
            time.sleep(0.3)  # lets the server read the first half; not asserted on
            b.echo(json_text(50_000, seed=4))
            b.echo(far_repeats(20_000, seed=5))
            a.sock.sendall(frame[len(frame) // 2 :])
        assert a.recv_message().text == text
        b.echo(json_text(1000, seed=6))


# --- realtime: one room message, members with and without compression ----------------


class Member:
    """A realtime connection on /ws/connect, closed with `stack`: a websockets
    client, or a RawWs (which also shows whether each message came compressed)."""

    def __init__(self, server, client, stack):
        self.client = client
        if client.startswith("raw"):  # "raw: OFFER"
            self.raw = stack.enter_context(RawWs(server, [client[4:].strip()], path="/ws/connect"))
            assert self.raw.params is not None
        else:  # "deflate" or "plain": websockets with compression or without
            compression = None if client == "plain" else client
            self.ws = stack.enter_context(ws_connect(server, "/ws/connect", compression=compression))
            header = self.ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (header is not None) == (compression is not None), header
        self.until("room_joined")  # welcome, then room_joined: a member of general now

    def recv(self):
        """The next message: (JSON, its RawWs Message or None)."""
        if self.client.startswith("raw"):
            msg = self.raw.recv_message()
            return json.loads(msg.text), msg
        return json.loads(self.ws.recv(timeout=TIMEOUT)), None

    def until(self, message_type, count=1):
        """The next `count` messages of `message_type` (others are skipped)."""
        got = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < count:
            assert time.monotonic() < deadline, f"{len(got)} of {count} {message_type} messages arrived"
            msg = self.recv()
            if msg[0]["message_type"] == message_type:
                got.append(msg)
        return got


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_room_message_reaches_members_with_and_without_compression(start_server, mode):
    # Three websockets clients with compression, one without, and two raw
    # ones that see the frames, one of them with a 9-bit server window; two
    # shards. Every other message repeats 2000 characters 2000 characters
    # later: compressed with a window over 9 bits for everyone, it would not
    # inflate on the 9-bit member. The sender gets its own messages too.
    server = start(start_server, mode, JWT_SECRET="", RINGGATE_SHARDS=2)
    clients = ["deflate", "deflate", "deflate", "plain",
               f"raw: {DEFLATE}", f"raw: {DEFLATE}; server_max_window_bits=9"]
    with contextlib.ExitStack() as stack:
        members = [Member(server, client, stack) for client in clients]
        contents = [json_text(4096, seed=i) if i % 2 else random_bytes(1000, seed=i).hex() * 2 for i in range(6)]
        for i, content in enumerate(contents):
            members[1].ws.send(json.dumps({"message_type": "room_message", "room": "general",
                                           "data": {"seq": i, "content": content}}))
        want = [{"seq": i, "content": c} for i, c in enumerate(contents)]
        senders = set()
        for n, member in enumerate(members):
            got = member.until("room_message", count=len(contents))
            assert [m["data"] for m, _ in got] == want, f"member {n} ({member.client})"
            senders |= {m["from_user_id"] for m, _ in got}
            for m, raw in got:
                if raw is not None and m["data"]["seq"] % 2:  # the JSON ones compress at any window
                    assert raw.rsv1 and raw.wire < len(raw.data) // 2, (n, raw.rsv1, raw.wire, len(raw.data))
        assert len(senders) == 1


@pytest.mark.parametrize("mode", ["shared", "dedicated-15"])
def test_realtime_inflated_size_limit(start_server, mode):
    server = start(start_server, mode, JWT_SECRET="", WS_MAX_MESSAGE_SIZE="64KiB")
    with RawWs(server, [DEFLATE], path="/ws") as ws:
        assert json.loads(ws.recv_message().text)["message_type"] == "welcome"
        ping = {"message_type": "ping", "data": {"pad": "x" * 30_000}}
        ws.send(json.dumps(ping))
        pong = json.loads(ws.recv_message().text)
        assert (pong["message_type"], pong["data"]) == ("pong", ping["data"])
        ws.send(json.dumps({"message_type": "ping", "data": {"pad": "x" * 70_000}}), background=True)
        assert ws.expect_close() == 1009


# --- headless Chromium ---------------------------------------------------------------

ECHO_PAGE = """
(url, text) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => ws.send(text);
  ws.onmessage = (e) => { resolve([ws.extensions, e.data === text, e.data.length]); ws.close(); };
  ws.onclose = (e) => resolve(["closed", e.code]);
  setTimeout(() => resolve(["timeout"]), 10000);
})
"""


@pytest.mark.parametrize("mode", ["shared", "dedicated-15", "dedicated-10", "off"])
def test_browser_websocket_negotiates_deflate(start_server, mode):
    from test_browser import Chromium, open_health_page

    server = start(start_server, mode)
    browser = Chromium()
    try:
        open_health_page(browser, server)
        text = "ringgate compresses this line. " * 66  # about 2 KiB, repetitive
        args = json.dumps([server.url("/echo"), text])[1:-1]
        extensions, same, length = browser.evaluate(f"({ECHO_PAGE})({args})")
        assert (same, length) == (True, len(text)), extensions
        if mode == "off":
            assert extensions == ""
        else:
            params = answered_params(extensions)
            check_answer(MODES[mode], offer_params(WEBSOCKETS_OFFER), params)  # Chromium offers the same
    finally:
        browser.close()
