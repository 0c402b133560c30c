"""Close codes: echoed client codes, 1007 for invalid UTF-8, 1009 for size."""

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import connect

TIMEOUT = 10


@pytest.mark.parametrize("code,reason", [(1000, ""), (1001, "going"), (4001, "custom reason")])
def test_close_code_is_echoed(server, code, reason):
    with connect(server.url(), open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"
        ws.close(code=code, reason=reason)
        # close_code is the code of the close frame the server sent back
        # (the reason need not be echoed).
        assert ws.close_code == code


def test_invalid_utf8_text_is_closed_with_1007(server):
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        # text=True sends these bytes in a text frame as they are.
        ws.send(b"bad \xff\xfe utf-8", text=True)
        with pytest.raises(ConnectionClosedError) as exc:
            ws.recv(timeout=TIMEOUT)
        assert exc.value.rcvd is not None, "the server must send a close frame"
        assert exc.value.rcvd.code == 1007


def test_message_over_the_limit_is_closed_with_1009(start_server):
    server = start_server(env={"RINGGATE_MAX_MESSAGE_SIZE": "1024"})
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        ws.send("a" * 1024)  # at the limit: fine
        assert ws.recv(timeout=TIMEOUT) == "a" * 1024
        ws.send("a" * 2048)
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=TIMEOUT)
        assert exc.value.rcvd is not None, "the server must send a close frame"
        assert exc.value.rcvd.code == 1009
