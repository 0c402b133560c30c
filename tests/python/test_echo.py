"""/echo with the websockets library as the client."""

import os

from websockets.sync.client import connect

TIMEOUT = 10


def test_text_round_trip(server):
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        for text in ["hello", "", "κόσμε 世界 🦀", "x" * 70_000]:
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text


def test_binary_round_trip(server):
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        for data in [b"\x00\x01\xff", b"", os.urandom(4096)]:
            ws.send(data)
            assert ws.recv(timeout=TIMEOUT) == data


def test_one_mebibyte_message(server):
    data = os.urandom(1 << 20)
    with connect(server.url(), open_timeout=TIMEOUT, max_size=4 << 20) as ws:
        ws.send(data)
        assert ws.recv(timeout=TIMEOUT) == data


def test_fragmented_message_from_an_iterable(server):
    # websockets sends an iterable as one fragmented message.
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        ws.send(["frag", "ment", "ed"])
        assert ws.recv(timeout=TIMEOUT) == "fragmented"
        ws.send([b"\x01", b"\x02\x03"])
        assert ws.recv(timeout=TIMEOUT) == b"\x01\x02\x03"


def test_ping_is_answered_with_the_same_payload(server):
    # websockets matches the pong's payload to the ping's; the event is set
    # only when the pong carrying that payload arrives.
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        for payload in [b"", b"abc", bytes(range(125))]:
            pong = ws.ping(payload)
            assert pong.wait(TIMEOUT), f"no pong for ping {payload!r}"


def test_no_subprotocol_is_negotiated(server):
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        assert ws.subprotocol is None
        ws.send("plain")
        assert ws.recv(timeout=TIMEOUT) == "plain"


def test_offered_subprotocol_is_not_forced_on_echo(server):
    # /echo selects none; websockets accepts a response without one.
    with connect(server.url(), open_timeout=TIMEOUT, subprotocols=["chat"]) as ws:
        assert ws.subprotocol is None
        ws.send("still echoes")
        assert ws.recv(timeout=TIMEOUT) == "still echoes"
