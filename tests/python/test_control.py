"""The control plane seen by stock HTTP clients: requests (keep-alive
sessions), urllib, curl, and Prometheus's own parser reading /metrics."""

import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
import requests
from websockets.sync.client import connect

from openmetrics import samples

TIMEOUT = 10


def base(server):
    return f"http://{server.host}:{server.port}"


def test_requests_session_keeps_one_connection(server):
    with requests.Session() as session:
        answers = [session.get(base(server) + "/health", timeout=TIMEOUT) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.json()["status"] == "healthy" for a in answers)
    # urllib3 reused the connection: the server never asked to close it.
    assert all("close" not in a.headers.get("Connection", "") for a in answers)


def test_urllib_errors_are_json(server):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(base(server) + "/nowhere", timeout=TIMEOUT)
    assert err.value.code == 404
    body = json.loads(err.value.read())
    assert body["error"]["code"] == "not_found"
    req = urllib.request.Request(base(server) + "/health", method="PUT", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=TIMEOUT)
    assert err.value.code == 405
    assert err.value.headers["Allow"] == "GET,HEAD"
    assert json.loads(err.value.read())["error"]["code"] == "method_not_allowed"


def test_metrics_parse_and_move_with_traffic(server):
    def scrape():
        r = requests.get(base(server) + "/metrics", timeout=TIMEOUT)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        return samples(r.text)

    before = scrape()
    for name in [
        "websocket_connections_total",
        "websocket_messages_total",
        "websocket_errors_total",
        "websocket_connection_duration_seconds_count",
        "websocket_bytes_total",
        "websocket_slow_consumer_closes_total",
    ]:
        assert any(k[0] == name for k in before), f"{name} missing"
    echo_in = ("websocket_messages_total", frozenset({"direction": "in", "route": "/echo"}.items()))
    open_echo = ("websocket_connections_total", frozenset({"route": "/echo"}.items()))
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        for i in range(7):
            ws.send(f"m{i}")
            assert ws.recv(timeout=TIMEOUT) == f"m{i}"
        during = scrape()
        assert during[open_echo] == before[open_echo] + 1
    assert during[echo_in] == before[echo_in] + 7
    after = scrape()
    accepted = ("websocket_handshakes_total", frozenset({"status": "101"}.items()))
    assert after[accepted] == before.get(accepted, 0) + 1
    assert after[("websocket_connection_duration_seconds_count", frozenset())] >= 1
    assert after[("websocket_bytes_total", frozenset({"direction": "in"}.items()))] > 0


def test_connections_in_the_seed_shape(server):
    with connect(server.url(), open_timeout=TIMEOUT, subprotocols=None):
        doc = requests.get(base(server) + "/connections", timeout=TIMEOUT).json()
    assert doc["total_connections"] == 1
    (conn,) = doc["connections"].values()
    for key in ["connected_at", "last_activity", "remote_addr", "subprotocol"]:
        assert key in conn
    assert "timestamp" in doc


def test_admin_token_rules(start_server):
    server = start_server(env={"ADMIN_TOKEN": "t0ken"})
    r = requests.get(base(server) + "/metrics", timeout=TIMEOUT)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "unauthorized"
    r = requests.get(base(server) + "/metrics", headers={"Authorization": "Bearer t0ken"}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert requests.get(base(server) + "/health", timeout=TIMEOUT).status_code == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_reuses_the_connection_and_posts_chunked(server):
    out = subprocess.run(
        ["curl", "-sv", "--max-time", "10", base(server) + "/health", base(server) + "/ws/health"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Re-using existing connection" in out.stderr or "Reusing existing" in out.stderr, out.stderr
    out = subprocess.run(
        [
            "curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", base(server) + "/metrics",
        ],
        input="x" * 5000,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "405"


# --- /stats and /metrics ------------------------------------------------------------


def test_stats_and_metrics_agree_on_messages_at_once(server):
    with connect(server.url(), open_timeout=TIMEOUT) as ws:
        for i in range(25):
            ws.send(f"m{i}")
            assert ws.recv(timeout=TIMEOUT) == f"m{i}"
        # No sleep: both answers must already show every echo.
        stats = requests.get(base(server) + "/stats", timeout=TIMEOUT).json()
        values = samples(requests.get(base(server) + "/metrics", timeout=TIMEOUT).text)
    by_stats = tuple(sum(s[f"messages_{d}"] for s in stats["shards"]) for d in ("in", "out"))
    by_metrics = tuple(
        sum(v for (name, labels), v in values.items()
            if name == "websocket_messages_total" and dict(labels)["direction"] == d)
        for d in ("in", "out")
    )
    assert by_stats == by_metrics == (25, 25), (by_stats, by_metrics)


# --- the admin rule without a token: browsers elsewhere are not admins -----------------


def test_admin_calls_from_this_machine_pass_and_forged_ones_do_not(server):
    rooms = base(server) + "/ws/rooms"
    r = requests.post(rooms, json={"id": "by-requests"}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    refused = [
        # A page elsewhere: a simple POST needs no CORS preflight.
        ({"Content-Type": "text/plain", "Origin": "https://evil.example"}, 403, "origin_refused"),
        # DNS rebinding: the page's own name now resolves to 127.0.0.1.
        ({"Content-Type": "application/json", "Host": f"evil.example:{server.port}",
          "Origin": f"http://evil.example:{server.port}"}, 403, "host_refused"),
        # A reverse proxy on this host relaying a request from elsewhere.
        ({"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"}, 403, "proxied_request"),
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
    ]
    for headers, status, code in refused:
        r = requests.post(rooms, data=json.dumps({"id": "forged"}), headers=headers, timeout=TIMEOUT)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), headers
    if shutil.which("curl"):
        def curl(*args):
            out = subprocess.run(["curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", *args, rooms],
                                 capture_output=True, text=True, check=True)
            return out.stdout
        assert curl("-H", "Content-Type: application/json", "-d", '{"id":"by-curl"}') == "201"
        assert curl("-d", '{"id":"form-encoded"}') == "415"  # curl -d says x-www-form-urlencoded
    ids = {room["id"] for room in requests.get(rooms, timeout=TIMEOUT).json()["rooms"]}
    assert "forged" not in ids and "form-encoded" not in ids
    assert "by-requests" in ids
