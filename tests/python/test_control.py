"""The control plane seen by stock HTTP clients: requests (keep-alive
sessions), urllib, curl, Prometheus's own parser reading /metrics, and a real
Prometheus (the Debian package `prometheus`) scraping a server that hostile
charge points and room names tried to break."""

import json
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
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


# --- /metrics against hostile label values -----------------------------------------

# An action that writes its own lines into a scrape that does not escape it.
INJECTION = 'X"} 1\nringgate_up 0\n# EOF\n'
# Actions no OCPP version knows: each one counts as "other".
HOSTILE_ACTIONS = [INJECTION, "Y\\", "Z" * 200_000] + [f"Vendor{n}{'q' * 50_000}" for n in range(8)]
HOSTILE_ROOMS = ['evil"}1\\', "back\\slash", 'quote"quote']
# Far more than the scrape of a fresh server with a few rooms and calls takes.
SCRAPE_BOUND = 64 * 1024


def hostile_state(server):
    """Hostile charge-point actions (and one known action) and hostile room ids."""
    with connect(f"ws://{server.host}:{server.port}/ocpp/CP1", subprotocols=["ocpp1.6"],
                 open_timeout=TIMEOUT, max_size=None) as ws:
        for n, action in enumerate(HOSTILE_ACTIONS + ["Heartbeat"]):
            ws.send(json.dumps([2, f"m{n}", action, {}]))
            answer = json.loads(ws.recv(timeout=TIMEOUT))
            assert answer[:2] in ([3, f"m{n}"], [4, f"m{n}"]), answer[:3]
    for room in HOSTILE_ROOMS:
        r = requests.post(base(server) + "/ws/rooms", json={"id": room}, timeout=TIMEOUT)
        assert r.status_code == 201, r.text


def test_hostile_actions_and_room_ids_cannot_break_the_scrape(server):
    hostile_state(server)
    r = requests.get(base(server) + "/metrics", timeout=TIMEOUT)
    assert r.status_code == 200
    assert len(r.content) < SCRAPE_BOUND, f"a {len(r.content)}-byte scrape"
    values = samples(r.text)  # the OpenMetrics parser raises on a corrupt scrape
    assert not any(name == "ringgate_up" for name, _ in values)
    other = ("ocpp_calls_total", frozenset({"direction": "uplink", "action": "other", "result": "error"}.items()))
    assert values[other] == len(HOSTILE_ACTIONS)
    heartbeat = ("ocpp_calls_total", frozenset({"direction": "uplink", "action": "Heartbeat", "result": "result"}.items()))
    assert values[heartbeat] == 1
    rooms = {dict(labels)["room"] for name, labels in values if name == "realtime_room_members"}
    assert set(HOSTILE_ROOMS) <= rooms, rooms


def test_a_scrape_over_its_bound_leaves_whole_families_out_and_says_so(start_server):
    bound = 24 * 1024
    server = start_server(env={"RINGGATE_METRICS_MAX_BYTES": str(bound), "WS_MAX_ROOMS": "200"})
    for n in range(150):  # two families of 150 long room labels: far past the bound
        room = f"room{n:03}-" + "r" * 110
        r = requests.post(base(server) + "/ws/rooms", json={"id": room}, timeout=TIMEOUT)
        assert r.status_code == 201, r.text
    r = requests.get(base(server) + "/metrics", timeout=TIMEOUT)
    assert r.status_code == 200
    assert len(r.content) <= bound
    values = samples(r.text)
    assert values[("ringgate_metrics_dropped_families", frozenset())] >= 1
    assert ("websocket_connections_total", frozenset({"route": "/echo"}.items())) in values
    assert ("realtime_rooms", frozenset()) in values
    rooms = [labels for name, labels in values if name == "realtime_room_members"]
    assert rooms == [], "a family is kept whole or not at all"
    assert "left out realtime_room_members" in server.log()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_query(port, query):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    doc = requests.get(url, timeout=TIMEOUT).json()
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_a_real_prometheus_scrapes_the_hostile_server(server):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Prometheus is not installed (Debian package `prometheus`): the real-scrape half is skipped")
    hostile_state(server)
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp, "prometheus.yml")
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: ringgate\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
        )
        port = free_port()
        log = open(pathlib.Path(tmp, "prometheus.log"), "w+")
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            target = None
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    targets = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=TIMEOUT).json()
                except requests.ConnectionError:
                    continue
                active = targets["data"]["activeTargets"]
                if active and active[0]["health"] != "unknown":
                    target = active[0]
                    break
            log.seek(0)
            assert target is not None, f"Prometheus never scraped; its log:\n{log.read()}"
            assert (target["health"], target["lastError"]) == ("up", ""), target
            (up,) = prometheus_query(port, 'up{job="ringgate"}')
            assert up["value"][1] == "1"
            assert prometheus_query(port, "ringgate_up") == []
            other = prometheus_query(port, 'ocpp_calls_total{action="other"}')
            assert [s["value"][1] for s in other] == [str(len(HOSTILE_ACTIONS))], other
            rooms = {s["metric"]["room"] for s in prometheus_query(port, "realtime_room_members")}
            assert set(HOSTILE_ROOMS) <= rooms, rooms
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()


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
