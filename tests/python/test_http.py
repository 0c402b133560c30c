"""Plain HTTP and refused handshakes, seen by stock clients."""

import datetime
import http.client
import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

TIMEOUT = 10


def get(server, path):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_health(server):
    status, headers, body = get(server, "/health")
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "healthy"
    ts = doc["timestamp"].replace("Z", "+00:00").replace("z", "+00:00")
    datetime.datetime.fromisoformat(ts)  # raises if not RFC 3339
    assert isinstance(doc["connections"], int) and doc["connections"] >= 0
    assert isinstance(doc["uptime"], str) and doc["uptime"]


def test_unknown_path_is_a_json_404(server):
    status, _, body = get(server, "/nowhere")
    assert status == 404
    err = json.loads(body)["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str)


def test_websocket_to_unknown_path_is_refused_with_404(server):
    with pytest.raises(InvalidStatus) as exc:
        connect(server.url("/nowhere"), open_timeout=TIMEOUT)
    assert exc.value.response.status_code == 404


class Version8Connection(ClientConnection):
    """A websockets client that asks for protocol version 8 (pre-RFC)."""

    def handshake(self, *args, **kwargs):
        make_request = self.protocol.connect

        def connect_v8():
            request = make_request()
            del request.headers["Sec-WebSocket-Version"]
            request.headers["Sec-WebSocket-Version"] = "8"
            return request

        self.protocol.connect = connect_v8
        return super().handshake(*args, **kwargs)


def test_unsupported_version_is_426_advertising_13(server):
    with pytest.raises(InvalidStatus) as exc:
        connect(server.url(), open_timeout=TIMEOUT, create_connection=Version8Connection)
    response = exc.value.response
    assert response.status_code == 426
    assert response.headers.get("Sec-WebSocket-Version") == "13"


def test_echo_disabled_is_404(start_server):
    server = start_server(args=["--no-echo"])
    with pytest.raises(InvalidStatus) as exc:
        connect(server.url(), open_timeout=TIMEOUT)
    assert exc.value.response.status_code == 404
