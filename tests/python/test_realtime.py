"""The realtime service on /ws and /ws/connect, seen by stock clients: the
Python `websockets` asyncio client with PyJWT-made tokens, and `requests`
for the admin API and /metrics. Every test starts its own ringgate (two
shards) through conftest's fixtures; every wait is bounded.

Helpers worth knowing:
- `Client.expect(type)` reads the next message and insists on its type;
  `Client.quiet()` collects what arrives in a short window (for "nothing
  else came").
- "Exactly once" is checked with a marker: the same producer sends a second
  message after the one under test; hub deliveries from one producer keep
  their order, so a receiver reads up to the marker and then counts.
- `on_each_shard()` opens connections until one sits on each shard (a
  connection's shard is its id >> 54 in GET /connections), closing spares.
"""

import asyncio
import base64
import datetime
import json
import os
import pathlib
import resource
import signal
import socket
import struct
import time
import uuid

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import harness
from harness import metric, scrape

SECRET = "ringgate-realtime-test-secret-" + "0123456789abcdef" * 3  # >= 64 bytes: PyJWT stays quiet, HS512 too
TIMEOUT = 10.0  # any single wait for a message or an answer
QUIET = 0.4  # how long "nothing more arrives" is watched
SHARDS = 2
TEST_DEADLINE = 60.0  # a whole async test body

BASE_ENV = {
    "JWT_SECRET": SECRET,
    "RINGGATE_SHARDS": str(SHARDS),
    "WS_DEFAULT_ROOMS": "general,lobby",
}


# --- servers, tokens, HTTP ------------------------------------------------------------


def realtime(start_server, **env):
    """A ringgate with the realtime defaults above, `env` on top."""
    full = dict(BASE_ENV)
    full.update({k: str(v) for k, v in env.items()})
    return start_server(env=full)


def token(sub="alice", username=None, ttl=3600, secret=SECRET, algorithm="HS256", drop=(), **claims):
    payload = {"sub": sub, "username": username or sub.capitalize(), "exp": int(time.time()) + ttl}
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    return jwt.encode(payload, secret, algorithm=algorithm)


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def http(server, method, path, **kw):
    return harness.http(server, method, path, TIMEOUT, **kw)


async def ahttp(server, method, path, **kw):
    """`http` off the event loop, so open clients keep reading meanwhile."""
    return await asyncio.wait_for(asyncio.to_thread(http, server, method, path, **kw), TIMEOUT + 5)


async def wait_until(check, what, timeout=TIMEOUT):
    """Polls the (blocking) `check` until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def online(server):
    """{user_id: connections} from GET /ws/online."""
    doc = http(server, "GET", "/ws/online").json()
    return {u["user_id"]: u["connections"] for u in doc["users"]}


def room_users(server, room):
    return http(server, "GET", f"/ws/rooms/{room}").json()["user_count"]


# --- clients --------------------------------------------------------------------------


class Client:
    """One realtime connection speaking JSON."""

    def __init__(self, ws, welcome):
        self.ws = ws
        self.welcome = welcome

    @property
    def user_id(self):
        return self.welcome["data"]["user_id"]

    async def send(self, **message):
        await self.ws.send(json.dumps(message))

    async def next(self, timeout=TIMEOUT):
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            pytest.fail(f"no message within {timeout}s")
        assert isinstance(raw, str), f"expected a text message, got {raw!r}"
        return json.loads(raw)

    async def expect(self, message_type, timeout=TIMEOUT):
        msg = await self.next(timeout)
        assert msg["message_type"] == message_type, f"expected {message_type}, got {msg}"
        return msg

    async def until(self, predicate, timeout=TIMEOUT):
        """Messages up to and including the first that `predicate` accepts."""
        got = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                pytest.fail(f"timed out; received so far: {got}")
            got.append(await self.next(left))
            if predicate(got[-1]):
                return got

    async def quiet(self, duration=QUIET):
        """What arrives within `duration` (usually asserted to be nothing)."""
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        while (left := deadline - loop.time()) > 0:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                break
            got.append(json.loads(raw) if isinstance(raw, str) else raw)
        return got

    async def error_code(self, timeout=TIMEOUT):
        """The code of the next `error` message."""
        return (await self.expect("error", timeout))["data"]["code"]

    async def ping(self, nonce="p"):
        """A ping whose pong must come next."""
        await self.send(message_type="ping", data={"nonce": nonce})
        pong = await self.expect("pong")
        assert pong["data"] == {"nonce": nonce}

    async def join(self, room):
        await self.send(message_type="join", room=room)
        msg = await self.expect("room_joined")
        assert msg["data"]["room"] == room and msg["room"] == room
        return msg

    async def closed_with(self, timeout=TIMEOUT):
        """Waits for the server's close; returns (code, messages before it)."""
        got = []
        try:
            while True:
                got.append(await self.next(timeout))
        except ConnectionClosed:
            pass
        return self.ws.close_code, got


def ws_url(server, path="/ws", tok=None, **query):
    params = dict(query)
    if tok is not None:
        params["token"] = tok
    qs = "&".join(f"{k}={v}" for k, v in params.items())
    return f"ws://{server.host}:{server.port}{path}" + (f"?{qs}" if qs else "")


def ws_options(**kw):
    return harness.ws_options(TIMEOUT, **kw)


class Net:
    """The clients one test opened; all closed at the end."""

    def __init__(self, server):
        self.server = server
        self.clients = []

    async def raw(self, url, **kw):
        ws = await asyncio.wait_for(connect(url, **ws_options(**kw)), TIMEOUT + 5)
        self.clients.append(ws)
        return ws

    async def open(self, path="/ws", tok=None, **kw):
        """A connection whose welcome has been read."""
        query = kw.pop("query", {})
        ws = await self.raw(ws_url(self.server, path, tok, **query), **kw)
        client = Client(ws, None)
        client.welcome = await client.expect("welcome")
        return client

    async def user(self, sub, **claims):
        return await self.open(tok=token(sub, **claims))

    async def refused(self, url, **kw):
        """The status and JSON body of an upgrade the server refuses."""
        with pytest.raises(InvalidStatus) as err:
            ws = await asyncio.wait_for(connect(url, **ws_options(**kw)), TIMEOUT + 5)
            self.clients.append(ws)
        response = err.value.response
        return response.status_code, json.loads(bytes(response.body))

    async def aclose(self):
        if self.clients:
            await asyncio.wait_for(
                asyncio.gather(*(ws.close() for ws in self.clients), return_exceptions=True),
                TIMEOUT + 5,
            )


def drive(server, body, deadline=TEST_DEADLINE):
    harness.drive(Net(server), body, deadline)


def shard_of(server, ws):
    """The shard serving `ws`, from GET /connections (id >> 54)."""
    host, port = ws.local_address[:2]
    conns = http(server, "GET", "/connections?limit=1000").json()["connections"]
    for conn_id, info in conns.items():
        if info["remote_addr"] == f"{host}:{port}":
            shard = int(conn_id) >> 54
            assert shard == info["shard"], (conn_id, info)
            return shard
    pytest.fail(f"connection from {host}:{port} not in /connections")


async def on_each_shard(net, opener, attempts=40):
    """Calls `opener()` until one connection sits on each shard; returns them
    in shard order and closes the spares."""
    kept, spares = {}, []
    for _ in range(attempts):
        client = await opener()
        shard = await asyncio.to_thread(shard_of, net.server, client.ws)
        if shard in kept:
            spares.append(client)
        else:
            kept[shard] = client
        if len(kept) == SHARDS:
            break
    assert sorted(kept) == list(range(SHARDS)), f"no connection landed on every shard in {attempts} tries"
    for spare in spares:
        await asyncio.wait_for(spare.ws.close(), TIMEOUT)
    return [kept[s] for s in range(SHARDS)]


async def members_on_each_shard(net, server, room):
    """A member of `room` on each shard, and an outsider in no room."""
    members = await on_each_shard(net, lambda: net.user(f"m{len(net.clients)}"))
    outsider = await net.user("outsider")
    for m in members:
        await m.join(room)
    await wait_until(lambda: room_users(server, room) == len(members), f"members in {room}")
    return members, outsider


def of_type(*types):
    return lambda m: m["message_type"] in types


# --- authentication -------------------------------------------------------------------


def assert_refused_401(start_server, tok, code, message_part=None, **env):
    server = realtime(start_server, WS_JWT_LEEWAY="0", **env)

    async def body(net):
        status, doc = await net.refused(ws_url(server, "/ws", tok))
        assert status == 401
        assert doc["error"]["code"] == code
        if message_part:
            assert message_part in doc["error"]["message"]
        # The same reason is counted on /metrics, and nothing else.
        values = await asyncio.to_thread(scrape, server)
        failures = {
            dict(labels)["reason"]: v for (name, labels), v in values.items() if name == "realtime_auth_failures_total"
        }
        assert failures[code] == 1
        assert sum(failures.values()) == 1

    drive(server, body)


def test_missing_token_is_401_missing_token(start_server):
    assert_refused_401(start_server, None, "missing_token")


def test_malformed_token_is_401_malformed_token(start_server):
    assert_refused_401(start_server, "not-a-jwt", "malformed_token")


def test_token_with_garbage_parts_is_401_malformed_token(start_server):
    assert_refused_401(start_server, "abc.def.ghi", "malformed_token")


def test_token_signed_with_another_secret_is_401_bad_signature(start_server):
    tok = token("alice", secret="another-secret-of-at-least-32-bytes!!")
    assert_refused_401(start_server, tok, "bad_signature")


def test_expired_token_is_401_expired_with_leeway_0(start_server):
    assert_refused_401(start_server, token("alice", ttl=-5), "expired")


def test_token_not_yet_valid_is_401_not_yet_valid(start_server):
    tok = token("alice", nbf=int(time.time()) + 3600)
    assert_refused_401(start_server, tok, "not_yet_valid")


def test_token_without_sub_is_401_missing_claim(start_server):
    assert_refused_401(start_server, token("alice", drop=["sub"]), "missing_claim", '"sub"')


def test_token_without_username_is_401_missing_claim(start_server):
    assert_refused_401(start_server, token("alice", drop=["username"]), "missing_claim", '"username"')


def test_token_without_exp_is_401_missing_claim(start_server):
    assert_refused_401(start_server, token("alice", drop=["exp"]), "missing_claim", '"exp"')


def test_token_with_empty_sub_is_401_invalid_claim(start_server):
    assert_refused_401(start_server, token("", username="Nobody"), "invalid_claim", '"sub"')


def test_alg_none_token_is_401_algorithm_not_allowed(start_server):
    claims = {"sub": "mallory", "username": "Mallory", "exp": int(time.time()) + 3600, "role": "admin"}
    tok = b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(claims) + "."
    assert_refused_401(start_server, tok, "algorithm_not_allowed")


def test_hs512_token_with_the_right_secret_is_401_algorithm_not_allowed(start_server):
    assert_refused_401(start_server, token("alice", algorithm="HS512"), "algorithm_not_allowed")


def test_expired_token_within_the_default_leeway_is_accepted(start_server):
    server = realtime(start_server)  # WS_JWT_LEEWAY defaults to 30 s

    async def body(net):
        client = await net.open(tok=token("alice", ttl=-5))
        assert client.user_id == "alice"
        status, doc = await net.refused(ws_url(server, "/ws", token("alice", ttl=-120)))
        assert (status, doc["error"]["code"]) == (401, "expired")

    drive(server, body)


def test_connections_close_when_their_token_expires_only_when_asked(start_server):
    strict = realtime(start_server, WS_JWT_LEEWAY="0", WS_CLOSE_ON_TOKEN_EXPIRY="true")

    async def strict_body(net):
        short = await net.open(tok=token("alice", ttl=2))
        lasting = await net.open(tok=token("bob"))
        code, _ = await short.closed_with(timeout=6)
        assert (code, short.ws.close_reason) == (1008, "token expired")
        await lasting.ping()

    drive(strict, strict_body)
    lenient = realtime(start_server, WS_JWT_LEEWAY="0")

    async def lenient_body(net):
        short = await net.open(tok=token("alice", ttl=1))
        await asyncio.sleep(2.5)
        await short.ping()

    drive(lenient, lenient_body)


def test_token_in_query(start_server):
    server = realtime(start_server)

    async def body(net):
        client = await net.open(tok=token("alice"))
        assert client.welcome["data"] == {"user_id": "alice", "username": "Alice", "rooms": []}
        assert client.ws.subprotocol is None
        assert uuid.UUID(client.welcome["id"]).version == 4
        stamp = datetime.datetime.fromisoformat(client.welcome["timestamp"])
        assert abs(stamp.timestamp() - time.time()) < 60
        assert set(client.welcome) == {"id", "message_type", "data", "timestamp"}

    drive(server, body)


def test_token_in_bearer_header(start_server):
    server = realtime(start_server)

    async def body(net):
        client = await net.open(additional_headers={"Authorization": f"Bearer {token('bob')}"})
        assert client.welcome["data"] == {"user_id": "bob", "username": "Bob", "rooms": []}
        assert client.ws.subprotocol is None

    drive(server, body)


def test_token_in_access_token_subprotocol(start_server):
    server = realtime(start_server)

    async def body(net):
        client = await net.open(subprotocols=["access_token", token("carol")])
        assert client.welcome["data"] == {"user_id": "carol", "username": "Carol", "rooms": []}
        assert client.ws.subprotocol == "access_token"
        assert client.ws.response.headers["Sec-WebSocket-Protocol"] == "access_token"
        # A bad token in the same place is refused like any other.
        status, doc = await net.refused(
            ws_url(server, "/ws"), subprotocols=["access_token", token("carol", secret="x" * 40)]
        )
        assert (status, doc["error"]["code"]) == (401, "bad_signature")
        # Offered beside a token in the query, it is still selected: a
        # browser fails a connection whose answer selects none it offered.
        both = await net.open(tok=token("dave"), subprotocols=["access_token", "unused"])
        assert both.ws.subprotocol == "access_token"
        assert both.welcome["data"]["user_id"] == "dave"

    drive(server, body)


def test_anonymous_users_without_jwt_secret(start_server):
    server = realtime(start_server, JWT_SECRET="")

    async def body(net):
        a = await net.open()
        b = await net.open(tok="ignored-without-a-secret")
        for c in (a, b):
            assert c.user_id.startswith("anon-"), c.welcome
            assert c.welcome["data"]["username"].startswith("guest-")
        assert a.user_id != b.user_id
        # Anonymous users are ordinary users: private messages reach them.
        await a.send(message_type="private_message", to_user_id=b.user_id, data={"hi": 1})
        msg = await b.expect("private_message")
        assert (msg["from_user_id"], msg["to_user_id"], msg["data"]) == (a.user_id, b.user_id, {"hi": 1})

    drive(server, body)
    assert server.log().count("JWT_SECRET is not set") == 1


# --- rooms and presence ---------------------------------------------------------------


def test_connect_route_joins_the_first_default_room(start_server):
    server = realtime(start_server)

    async def body(net):
        client = await net.open("/ws/connect", token("alice"))
        assert client.welcome["data"]["rooms"] == ["general"]
        joined = await client.expect("room_joined")
        assert joined["room"] == "general"
        assert joined["data"] == {"room": "general", "name": "General"}
        await wait_until(lambda: room_users(server, "general") == 1, "alice in general")
        # Plain /ws joins nothing: the next message after the welcome is the pong.
        other = await net.open("/ws", token("bob"))
        assert other.welcome["data"]["rooms"] == []
        await other.ping()

    drive(server, body)


def test_connect_route_without_its_default_room_connects_to_no_room(start_server):
    server = realtime(start_server)

    async def body(net):
        deleted = await ahttp(server, "DELETE", "/ws/rooms/general")
        assert deleted.status_code == 200
        client = await net.open("/ws/connect", token("alice"))
        assert client.welcome["data"]["rooms"] == []
        await client.ping()

    drive(server, body)


def test_room_id_query_joins_that_room(start_server):
    server = realtime(start_server)

    async def body(net):
        for path in ("/ws", "/ws/connect"):
            client = await net.open(path, token("alice"), query={"room_id": "lobby"})
            assert client.welcome["data"]["rooms"] == ["lobby"]
            assert (await client.expect("room_joined"))["data"]["room"] == "lobby"
            await client.ping()

    drive(server, body)


def test_unknown_room_id_is_404_before_the_upgrade(start_server):
    server = realtime(start_server)

    async def body(net):
        for path in ("/ws", "/ws/connect"):
            status, doc = await net.refused(ws_url(server, path, token("alice"), room_id="nowhere"))
            assert status == 404
            assert doc["error"]["code"] == "room_not_found"
        values = await asyncio.to_thread(scrape, server)
        assert metric(values, "realtime_upgrades_refused_total", reason="room_not_found") == 2

    drive(server, body)


def test_join_and_leave_announce_presence_to_the_others(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        bob = await net.user("bob")
        await alice.join("lobby")
        await wait_until(lambda: room_users(server, "lobby") == 1, "alice in lobby")
        joined = await bob.join("lobby")
        assert joined["data"] == {"room": "lobby", "name": "Lobby"}
        event = await alice.expect("user_joined")
        assert event["data"] == {"user_id": "bob", "username": "Bob", "room": "lobby"}
        assert event["room"] == "lobby"
        await bob.send(message_type="leave", room="lobby")
        left = await bob.expect("room_left")
        assert left["data"] == {"room": "lobby"}
        event = await alice.expect("user_left")
        assert event["data"] == {"user_id": "bob", "username": "Bob", "room": "lobby"}
        # Bob hears nothing of his own comings and goings.
        assert await bob.quiet() == []
        # Leaving a room one is not in is an error; the connection goes on.
        await bob.send(message_type="leave", room="lobby")
        assert await bob.error_code() == "not_in_room"
        await bob.ping()

    drive(server, body)


def test_second_tab_announces_nothing_and_the_last_tab_leaving_announces_user_left(start_server):
    server = realtime(start_server)

    async def body(net):
        watcher = await net.user("watcher")
        await watcher.join("lobby")
        await wait_until(lambda: room_users(server, "lobby") == 1, "watcher in lobby")
        tab1, tab2 = await on_each_shard(net, lambda: net.user("ursula"))
        await wait_until(lambda: online(server).get("ursula") == 2, "ursula's two tabs")

        await tab1.join("lobby")
        first = await watcher.expect("user_joined")
        assert first["data"] == {"user_id": "ursula", "username": "Ursula", "room": "lobby"}
        await tab2.join("lobby")  # the second tab: nothing to announce
        assert await watcher.quiet() == []
        await wait_until(lambda: room_users(server, "lobby") == 2, "lobby users")

        await tab1.send(message_type="leave", room="lobby")
        await tab1.expect("room_left")
        assert await watcher.quiet() == [], "one tab is still in the room"
        assert room_users(server, "lobby") == 2

        await tab2.send(message_type="leave", room="lobby")
        await tab2.expect("room_left")
        last = await watcher.expect("user_left")
        assert last["data"] == {"user_id": "ursula", "username": "Ursula", "room": "lobby"}
        assert await watcher.quiet() == []
        await wait_until(lambda: room_users(server, "lobby") == 1, "only the watcher left")

    drive(server, body)


def test_closing_the_last_connection_announces_user_left(start_server):
    server = realtime(start_server)

    async def body(net):
        watcher = await net.user("watcher")
        await watcher.join("lobby")
        await wait_until(lambda: room_users(server, "lobby") == 1, "watcher in lobby")
        tab1, tab2 = await on_each_shard(net, lambda: net.user("ursula"))
        await tab1.join("lobby")
        await tab2.join("lobby")
        event = await watcher.expect("user_joined")
        assert event["data"]["user_id"] == "ursula"
        await tab1.ws.close()
        assert await watcher.quiet() == []
        await tab2.ws.close()
        event = await watcher.expect("user_left")
        assert event["data"] == {"user_id": "ursula", "username": "Ursula", "room": "lobby"}
        assert await watcher.quiet() == []
        await wait_until(lambda: "ursula" not in online(server), "ursula offline")

    drive(server, body)


def test_closing_announces_user_left_in_every_room_of_the_user(start_server):
    server = realtime(start_server)

    async def body(net):
        watcher = await net.user("watcher")
        await watcher.join("lobby")
        await watcher.join("general")
        await wait_until(lambda: room_users(server, "general") == 1, "watcher in general")
        leaver = await net.user("leaver")
        await leaver.join("lobby")
        await leaver.join("general")
        joined = await watcher.until(lambda m: m["message_type"] == "user_joined" and m["room"] == "general")
        assert [(m["message_type"], m["room"]) for m in joined] == [
            ("user_joined", "lobby"),
            ("user_joined", "general"),
        ]
        await leaver.ws.close()
        got = [await watcher.expect("user_left") for _ in range(2)]
        assert sorted(m["data"]["room"] for m in got) == ["general", "lobby"]
        assert all(m["data"]["user_id"] == "leaver" for m in got)
        assert await watcher.quiet() == []

    drive(server, body)


def test_a_room_deleted_and_made_anew_announces_joins_again(start_server):
    server = realtime(start_server)

    async def body(net):
        async def create():
            r = await ahttp(server, "POST", "/ws/rooms", json={"id": "phoenix"})
            assert r.status_code == 201

        await create()
        watcher = await net.user("watcher")
        await watcher.join("phoenix")
        await wait_until(lambda: room_users(server, "phoenix") == 1, "watcher in phoenix")
        tabs = await on_each_shard(net, lambda: net.user("ursula"))
        for tab in tabs:
            await tab.join("phoenix")
        assert (await watcher.expect("user_joined"))["data"]["user_id"] == "ursula"
        assert (await ahttp(server, "DELETE", "/ws/rooms/phoenix")).json()["connections_removed"] == 3
        for c in [watcher, *tabs]:
            assert (await c.until(of_type("room_deleted")))[-1]["room"] == "phoenix"
        await create()
        await watcher.join("phoenix")
        await wait_until(lambda: room_users(server, "phoenix") == 1, "watcher in the new phoenix")
        await tabs[1].join("phoenix")
        event = await watcher.expect("user_joined")
        assert event["data"] == {"user_id": "ursula", "username": "Ursula", "room": "phoenix"}
        await tabs[1].send(message_type="leave", room="phoenix")
        assert (await watcher.expect("user_left"))["data"]["user_id"] == "ursula"
        assert await watcher.quiet() == []

    drive(server, body)


def test_presence_can_be_turned_off(start_server):
    server = realtime(start_server, WS_ENABLE_USER_PRESENCE="false")

    async def body(net):
        alice = await net.user("alice")
        await alice.join("lobby")
        bob = await net.user("bob")
        await bob.join("lobby")
        await bob.send(message_type="leave", room="lobby")
        await bob.expect("room_left")
        await bob.ws.close()
        assert await alice.quiet() == []

    drive(server, body)


def test_room_limits_for_joins_and_auto_created_rooms(start_server):
    server = realtime(
        start_server, WS_AUTO_CREATE_ROOMS="true", WS_MAX_ROOMS=4, WS_ADMIN_ROOM_RESERVE=0, WS_MAX_ROOMS_PER_USER=2
    )

    async def body(net):
        alice = await net.user("alice")
        await alice.join("made-by-join")  # 3 rooms now
        client = await net.open(tok=token("bob"), query={"room_id": "made-by-connect"})  # 4 rooms
        assert client.welcome["data"]["rooms"] == ["made-by-connect"]
        assert (await client.expect("room_joined"))["room"] == "made-by-connect"
        rooms = [r["id"] for r in (await ahttp(server, "GET", "/ws/rooms")).json()["rooms"]]
        assert rooms == ["general", "lobby", "made-by-connect", "made-by-join"]
        await client.send(message_type="join", room="one-too-many")
        assert await client.error_code() == "room_limit"  # WS_MAX_ROOMS
        status, doc = await net.refused(ws_url(server, "/ws", token("carol"), room_id="one-too-many"))
        assert (status, doc["error"]["code"]) == (409, "room_limit")
        await alice.join("lobby")  # her second room
        await alice.send(message_type="join", room="general")
        assert await alice.error_code() == "room_limit"  # WS_MAX_ROOMS_PER_USER
        await alice.join("lobby")  # a room she is in: answered again, no error

    drive(server, body)


def room_ids(server):
    return [r["id"] for r in http(server, "GET", "/ws/rooms").json()["rooms"]]


def test_junk_joins_never_starve_the_admin_api_and_empty_rooms_they_made_are_reclaimed(start_server):
    """The review's case: anonymous users, WS_AUTO_CREATE_ROOMS, 100 junk joins. Joins may not
    take the last WS_ADMIN_ROOM_RESERVE (10) of WS_MAX_ROOMS (100), so the admin API still
    creates rooms; once the junk rooms are empty for WS_AUTO_ROOM_GRACE they are gone, and rooms
    of the admin API and WS_DEFAULT_ROOMS stay, empty or not."""
    server = realtime(start_server, JWT_SECRET="", WS_AUTO_CREATE_ROOMS="true", WS_AUTO_ROOM_GRACE="1s")

    async def body(net):
        junkers = [await net.open() for _ in range(3)]
        refused = 0
        for n in range(100):
            junker = junkers[n // 40]
            await junker.send(message_type="join", room=f"junk-{n}")
            reply = await junker.next()
            if reply["message_type"] == "error":
                assert reply["data"]["code"] == "room_limit", reply
                refused += 1
            else:
                assert reply["message_type"] == "room_joined", reply
        r = await ahttp(server, "POST", "/ws/rooms", json={"id": "ops"})
        assert r.status_code == 201, r.text
        assert refused == 12  # 2 default rooms + 88 made by joins = 90 = 100 - 10
        assert r.json()["auto_created"] is False
        listed = (await ahttp(server, "GET", "/ws/rooms")).json()["rooms"]
        assert sum(room["auto_created"] for room in listed) == 88
        for junker in junkers:
            await junker.ws.close()
        await wait_until(lambda: room_ids(server) == ["general", "lobby", "ops"], "junk rooms reclaimed")
        await asyncio.sleep(1.5)  # a grace and more: the others stay, empty as they are
        assert room_ids(server) == ["general", "lobby", "ops"]
        values = await asyncio.to_thread(scrape, server)
        assert metric(values, "realtime_rooms") == 3

    drive(server, body)


def test_a_room_made_by_a_join_that_empties_and_fills_again_within_the_grace_is_the_same_room(start_server):
    server = realtime(start_server, WS_AUTO_CREATE_ROOMS="true", WS_AUTO_ROOM_GRACE="2s")

    async def body(net):
        alice = await net.user("alice")
        await alice.join("flap")
        await alice.send(message_type="room_message", room="flap", data={})
        await alice.expect("room_message")
        first = (await ahttp(server, "GET", "/ws/rooms/flap")).json()
        for _ in range(3):  # leave and come back, a second apart: no churn
            await alice.send(message_type="leave", room="flap")
            await alice.expect("room_left")
            await asyncio.sleep(1)
            await alice.join("flap")
        again = (await ahttp(server, "GET", "/ws/rooms/flap")).json()
        assert (again["created_at"], again["message_count"]) == (first["created_at"], 1)
        await alice.send(message_type="leave", room="flap")
        await alice.expect("room_left")
        await wait_until(lambda: "flap" not in room_ids(server), "the empty room reclaimed")
        # A join after that makes a room anew.
        await alice.join("flap")
        fresh = (await ahttp(server, "GET", "/ws/rooms/flap")).json()
        assert fresh["message_count"] == 0 and fresh["client_count"] == 1

    drive(server, body)


def test_rooms_joins_made_and_left_empty_give_way_at_once_when_joins_need_room(start_server):
    """One client churning through junk rooms (join, leave: each stays for the grace) must not
    keep everyone else from making a room: when joins have used their share of WS_MAX_ROOMS, the
    room empty the longest goes at once. A room with someone in it never does."""
    server = realtime(
        start_server, WS_AUTO_CREATE_ROOMS="true", WS_AUTO_ROOM_GRACE="60s", WS_MAX_ROOMS=6, WS_ADMIN_ROOM_RESERVE=0
    )

    async def body(net):
        mallory = await net.user("mallory")
        for n in range(4):  # general and lobby, and 4 made by joins: the limit
            await mallory.join(f"junk-{n}")
            await mallory.send(message_type="leave", room=f"junk-{n}")
            await mallory.expect("room_left")
        alice = await net.user("alice")
        await alice.join("real")  # junk-0, empty the longest, gives way
        assert room_ids(server) == ["general", "junk-1", "junk-2", "junk-3", "lobby", "real"]
        for n in (1, 2, 3):
            await mallory.join(f"junk-{n}")
        await mallory.send(message_type="join", room="another")
        assert await mallory.error_code() == "room_limit"  # every room is in use
        assert room_ids(server) == ["general", "junk-1", "junk-2", "junk-3", "lobby", "real"]

    drive(server, body)


def test_reclaiming_never_splits_a_room_between_joins_on_both_shards(start_server):
    """With no grace, rooms are reclaimed as soon as a sweep finds them empty: members that
    leave and join again at once, on both shards, must still end in one room (each hears the
    other), and the room counts them right."""
    server = realtime(
        start_server, WS_AUTO_CREATE_ROOMS="true", WS_AUTO_ROOM_GRACE="0", WS_RATE_LIMIT_PER_MINUTE=0, LOG_LEVEL="debug"
    )

    async def body(net):
        a, b = await on_each_shard(net, lambda: net.user(f"u{len(net.clients)}"))
        for n in range(40):
            await asyncio.gather(*(c.send(message_type="join", room="churn") for c in (a, b)))
            for c in (a, b):
                await c.until(of_type("room_joined"))
            await a.send(message_type="room_message", room="churn", data={"n": n})
            got = await b.until(of_type("room_message"))
            assert got[-1]["data"] == {"n": n}, got
            await a.until(of_type("room_message"))
            await asyncio.gather(*(c.send(message_type="leave", room="churn") for c in (a, b)))
            for c in (a, b):
                await c.until(of_type("room_left"))
            if n % 8 == 0:
                await asyncio.sleep(0.25)  # let a sweep find it empty now and then
        await a.join("churn")
        await wait_until(lambda: http(server, "GET", "/ws/rooms/churn").json()["client_count"] == 1, "one member")

    drive(server, body)
    assert server.log().count("empty room made by a join reclaimed") >= 3, "the churn never met a reclaim"


def test_room_message_reaches_members_on_both_shards_exactly_once(start_server):
    server = realtime(start_server)

    async def body(net):
        members, outsider = await members_on_each_shard(net, server, "lobby")
        sender = members[0]
        await sender.send(
            message_type="room_message", room="lobby", data={"text": "hello", "n": 1}, from_user_id="forged"
        )
        await sender.send(message_type="text", room="lobby", data={"n": 2})  # the marker
        for m in members:
            got = [x for x in await m.until(lambda x: x["data"].get("n") == 2) if x["message_type"] != "user_joined"]
            assert [x["message_type"] for x in got] == ["room_message", "text"], got
            first = got[0]
            assert first["data"] == {"text": "hello", "n": 1}
            assert first["from_user_id"] == sender.user_id  # never the client's own claim
            assert first["room"] == "lobby"
            assert "to_user_id" not in first
            assert [x for x in await m.quiet() if x["message_type"] != "user_joined"] == []
        assert await outsider.quiet() == []

    drive(server, body)


def test_each_publishers_room_messages_arrive_in_order_on_every_shard(start_server):
    server = realtime(start_server, WS_RATE_LIMIT_PER_MINUTE="0")

    async def body(net):
        members, _ = await members_on_each_shard(net, server, "lobby")
        count = 200
        for sender in members:  # one publisher on each shard, interleaved
            for n in range(count):
                await sender.send(message_type="room_message", room="lobby", data={"from": sender.user_id, "n": n})
        for m in members:
            got = await m.until(
                lambda x: x["message_type"] == "room_message"
                and x["data"] == {"from": members[-1].user_id, "n": count - 1},
                timeout=15,
            )
            seen = {}
            for x in got:
                if x["message_type"] == "room_message":
                    seen.setdefault(x["data"]["from"], []).append(x["data"]["n"])
            # The last publisher is complete; the first may still be arriving.
            rest = await m.quiet()
            for x in rest:
                if x["message_type"] == "room_message":
                    seen.setdefault(x["data"]["from"], []).append(x["data"]["n"])
            for sender in members:
                assert seen[sender.user_id] == list(range(count)), sender.user_id

    drive(server, body)


def test_room_message_needs_membership(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        for message_type in ("room_message", "text"):
            await alice.send(message_type=message_type, room="lobby", data={"x": 1})
            assert await alice.error_code() == "not_in_room"
        await alice.send(message_type="room_message", data={"x": 1})
        assert await alice.error_code() == "missing_target"
        await alice.send(message_type="join", room="no-such-room")
        assert await alice.error_code() == "room_not_found"
        await alice.ping()

    drive(server, body)


def test_private_message_reaches_both_connections_of_a_user_on_different_shards(start_server):
    server = realtime(start_server)

    async def body(net):
        bobs = await on_each_shard(net, lambda: net.user("bob"))
        await wait_until(lambda: online(server).get("bob") == 2, "bob's two connections")
        alice = await net.user("alice")
        await alice.send(message_type="private_message", to_user_id="bob", data={"n": 1, "text": "psst"})
        await alice.send(message_type="text", to_user_id="bob", data={"n": 2})  # the marker
        for bob in bobs:
            got = await bob.until(lambda x: x["data"].get("n") == 2)
            assert [x["message_type"] for x in got] == ["private_message", "text"], got
            assert got[0]["data"] == {"n": 1, "text": "psst"}
            assert (got[0]["from_user_id"], got[0]["to_user_id"]) == ("alice", "bob")
            assert await bob.quiet() == []
        assert await alice.quiet() == []  # the sender is not the addressee

    drive(server, body)


def test_private_message_to_an_offline_user_is_user_offline(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        await alice.send(message_type="private_message", to_user_id="nobody", data={})
        assert await alice.error_code() == "user_offline"
        await alice.ping()

    drive(server, body)


def test_broadcast_needs_the_admin_role(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        boss = await net.user("boss", role="admin")
        await alice.send(message_type="broadcast", data={"x": 1})
        assert await alice.error_code() == "forbidden"
        await boss.send(message_type="broadcast", data={"x": 2})
        for c in (alice, boss):
            msg = await c.expect("broadcast")
            assert (msg["data"], msg["from_user_id"]) == ({"x": 2}, "boss")
            assert await c.quiet() == []

    drive(server, body)


def test_seed_002_aliases(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        bob = await net.user("bob")
        await alice.ws.send(json.dumps({"type": "join", "room_id": "lobby"}))
        assert (await alice.expect("room_joined"))["room"] == "lobby"
        await alice.ws.send(json.dumps({"type": "room_message", "room_id": "lobby", "content": "hi all"}))
        msg = await alice.expect("room_message")
        assert (msg["data"], msg["room"]) == ({"content": "hi all"}, "lobby")
        await alice.ws.send(json.dumps({"type": "private_message", "to": "bob", "content": "hi bob"}))
        msg = await bob.expect("private_message")
        assert (msg["data"], msg["to_user_id"], msg["from_user_id"]) == ({"content": "hi bob"}, "bob", "alice")

    drive(server, body)


def test_bad_json_unknown_type_and_binary_get_errors_and_the_connection_stays_open(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        cases = [
            ("{not json", "bad_json"),
            ("[1, 2]", "bad_json"),
            (json.dumps({"message_type": "teleport"}), "unknown_type"),
            (json.dumps({"data": {}}), "bad_message"),
            (b"\x00\x01binary", "unsupported"),
        ]
        for raw, code in cases:
            await alice.ws.send(raw)
            err = await alice.expect("error")
            assert err["data"]["code"] == code, (raw, err)
            assert err["data"]["message"]
            await alice.ping(nonce=code)

    drive(server, body)


def test_room_deletion_notifies_members_and_later_messages_are_refused(start_server):
    server = realtime(start_server)

    async def body(net):
        r = await ahttp(server, "POST", "/ws/rooms", json={"id": "doomed", "name": "Doomed"})
        assert r.status_code == 201
        members, outsider = await members_on_each_shard(net, server, "doomed")
        r = await ahttp(server, "DELETE", "/ws/rooms/doomed")
        assert r.status_code == 200
        assert r.json() == {"deleted": "doomed", "connections_removed": 2}
        for m in members:
            got = await m.until(of_type("room_deleted"))
            deleted = got[-1]
            assert (deleted["data"], deleted["room"]) == ({"room": "doomed"}, "doomed")
            assert [x for x in await m.quiet() if x["message_type"] != "user_joined"] == []
            await m.send(message_type="room_message", room="doomed", data={"x": 1})
            assert await m.error_code() == "not_in_room"
            await m.send(message_type="join", room="doomed")
            assert await m.error_code() == "room_not_found"
        assert await outsider.quiet() == []
        assert (await ahttp(server, "GET", "/ws/rooms/doomed")).status_code == 404

    drive(server, body)


# --- full mailboxes -------------------------------------------------------------------


class Inbox:
    """Reads everything `client` receives into `got`, in the background."""

    def __init__(self, client):
        self.client = client
        self.got = []
        self.task = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.client.ws:
                self.got.append(json.loads(raw))
        except ConnectionClosed:
            pass

    def of(self, message_type):
        return [m for m in self.got if m["message_type"] == message_type]


def test_through_tiny_mailboxes_no_private_message_is_lost_silently_and_presence_converges(start_server):
    """Two shards with mailboxes of 4 commands and 4 KiB, flooded with private messages while
    users come and go: every private message either reaches its addressee or its sender gets
    `overloaded`; once the flood is over, /ws/online, the room's count and what a member of
    the room heard (user_joined / user_left) all end right."""
    server = realtime(
        start_server,
        RINGGATE_MAILBOX_COMMANDS=4,
        RINGGATE_MAILBOX_BYTES="4KiB",
        WS_RATE_LIMIT_PER_MINUTE=0,
    )

    async def body(net):
        flooders = await on_each_shard(net, lambda: net.user(f"flood{len(net.clients)}"))
        addressees = await on_each_shard(net, lambda: net.user(f"to{len(net.clients)}"))
        watcher = await net.user("watcher")
        await watcher.join("lobby")
        inboxes = {c.user_id: Inbox(c) for c in [*flooders, *addressees, watcher]}

        sent = {f.user_id: 0 for f in flooders}
        churning = True

        async def flood(flooder):
            while churning and sent[flooder.user_id] < 4000:
                for to in addressees:
                    await flooder.send(message_type="private_message", to_user_id=to.user_id, data={})
                    sent[flooder.user_id] += 1
                await asyncio.sleep(0)

        churners = {}  # user -> its open connection, or None
        in_room = set()

        async def churn(i):
            user = f"churn{i}"
            for cycle in range(12):
                client = churners.get(user)
                if client is None:
                    client = churners[user] = await net.user(user)
                    Inbox(client)
                await client.send(message_type="join", room="lobby")
                in_room.add(user)
                await asyncio.sleep(0.01)
                if (cycle + i) % 3 == 0:
                    await client.send(message_type="leave", room="lobby")
                    in_room.discard(user)
                if (cycle + i) % 4 == 1:
                    await client.ws.close()
                    churners[user] = None
                    in_room.discard(user)
                await asyncio.sleep(0.01)

        floods = [asyncio.create_task(flood(f)) for f in flooders]
        await asyncio.gather(*(churn(i) for i in range(8)))
        churning = False
        await asyncio.gather(*floods)

        def accounted():
            """{flooder: messages that reached their addressee + overloaded errors it got}."""
            counts = {}
            for f in flooders:
                reached = sum(
                    1
                    for a in addressees
                    for m in inboxes[a.user_id].of("private_message")
                    if m["from_user_id"] == f.user_id
                )
                errors = inboxes[f.user_id].of("error")
                assert {e["data"]["code"] for e in errors} <= {"overloaded"}, errors[:3]
                counts[f.user_id] = reached + len(errors)
            return counts

        deadline = time.monotonic() + 20
        while accounted() != sent and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert accounted() == sent, f"sent {sent}; reached or overloaded: {accounted()}"

        online_now = {c.user_id for c in [*flooders, *addressees, watcher]} | {
            user for user, client in churners.items() if client is not None
        }
        expected_room = {"watcher", *in_room}

        def heard():
            present = set()
            for m in inboxes["watcher"].got:
                if m["message_type"] == "user_joined":
                    present.add(m["data"]["user_id"])
                elif m["message_type"] == "user_left":
                    present.discard(m["data"]["user_id"])
            return present

        def converged():
            return (
                set(online(server)) == online_now
                and room_users(server, "lobby") == len(expected_room)
                and heard() == expected_room - {"watcher"}
            )

        deadline = time.monotonic() + 20
        while not await asyncio.to_thread(converged) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert set(online(server)) == online_now
        assert room_users(server, "lobby") == len(expected_room)
        assert heard() == expected_room - {"watcher"}
        values = await asyncio.to_thread(scrape, server)
        refused = sum(v for (name, _), v in values.items() if name == "ringgate_mailbox_rejected_total")
        assert refused > 0, "the mailboxes never filled: the test tested nothing"

    drive(server, body, deadline=90)


# --- limits ---------------------------------------------------------------------------


def test_rate_limit_answers_rate_limited_then_closes_1008(start_server):
    server = realtime(start_server, WS_RATE_LIMIT_PER_MINUTE=1, WS_RATE_LIMIT_BURST=3, WS_RATE_LIMIT_CLOSE_AFTER=3)

    async def body(net):
        noisy = await net.user("noisy")
        calm = await net.user("calm")
        for i in range(6):
            await noisy.send(message_type="ping", data={"i": i})
        code, got = await noisy.closed_with()
        kinds = [(m["message_type"], m["data"].get("code")) for m in got]
        # Burst of 3 passes; refusals 1 and 2 are answered; the 3rd in a row closes.
        assert kinds == [("pong", None)] * 3 + [("error", "rate_limited")] * 2, got
        assert code == 1008
        await calm.ping()  # another connection has its own bucket
        values = await asyncio.to_thread(scrape, server)
        assert metric(values, "realtime_rate_limited_total") == 3

    drive(server, body)


def test_origin_check_accepts_exact_and_wildcard_origins(start_server):
    server = realtime(
        start_server, WS_ENABLE_ORIGIN_CHECK="true", WS_ALLOWED_ORIGINS="https://app.example.com,*.example.org"
    )

    async def body(net):
        for origin in [
            "https://app.example.com",
            "https://APP.Example.com",
            "https://chat.example.org",
            "http://a.b.example.org",
            None,  # no Origin header: not a browser, allowed
        ]:
            client = await net.open(tok=token("alice"), origin=origin)
            assert client.user_id == "alice"

    drive(server, body)


def test_origin_check_rejects_other_origins_with_403(start_server):
    server = realtime(
        start_server, WS_ENABLE_ORIGIN_CHECK="true", WS_ALLOWED_ORIGINS="https://app.example.com,*.example.org"
    )

    async def body(net):
        rejected = [
            "https://evil.example.net",
            "http://app.example.com",  # another scheme
            "https://app.example.com:8443",  # another port
            "https://example.org",  # the wildcard's apex is not a subdomain
            "https://example.org.evil.net",
            "null",  # sandboxed pages: only "*" allows it
        ]
        for origin in rejected:
            status, doc = await net.refused(ws_url(server, "/ws", token("alice")), origin=origin)
            assert (status, doc["error"]["code"]) == (403, "origin_not_allowed"), origin
        values = await asyncio.to_thread(scrape, server)
        assert metric(values, "realtime_upgrades_refused_total", reason="origin_not_allowed") == len(rejected)
        # /echo is not the realtime service: no origin check there.
        ws = await net.raw(server.url("/echo"), origin="https://evil.example.net")
        await ws.send("still echoed")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "still echoed"

    drive(server, body)


def test_ip_allowlist_rejects_peers_outside_it(start_server):
    server = realtime(start_server, WS_IP_ALLOWLIST="10.0.0.0/8")

    async def body(net):
        for path in ("/ws", "/ws/connect"):
            status, doc = await net.refused(ws_url(server, path, token("alice")))
            assert (status, doc["error"]["code"]) == (403, "ip_not_allowed")
        values = await asyncio.to_thread(scrape, server)
        assert metric(values, "realtime_upgrades_refused_total", reason="ip_not_allowed") == 2

    drive(server, body)


def all_stopped(pid):
    """Whether every thread of process `pid` has stopped (SIGSTOP takes effect thread by thread);
    io_uring's kernel workers (iou-*) do not stop and are left out."""
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue
        name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
        if not name.startswith("iou-") and state not in "tT":
            return False
    return True


def test_ip_allowlist_refuses_a_peer_whose_address_is_unknown(start_server):
    """A peer that resets its connection right after sending the upgrade has no address by the
    time the server reads the request (getpeername fails): with an allowlist, that is a 403,
    counted, never a pass. The server is stopped (SIGSTOP) while the request and the reset are
    queued in the kernel, so the order is certain."""
    server = realtime(start_server, WS_IP_ALLOWLIST="127.0.0.0/8")

    async def body(net):
        request = (
            f"GET /ws?token={token('alice')} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ).encode()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            await wait_until(lambda: all_stopped(server.proc.pid), "the server stopped")
            s = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
            s.sendall(request)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # a reset, not a FIN
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)

        def refused():
            values = scrape(server)
            return values.get(("realtime_upgrades_refused_total", frozenset({("reason", "peer_address_unknown")})))

        assert await wait_until(refused, "the unknown peer counted as refused") == 1
        values = await asyncio.to_thread(scrape, server)
        assert metric(values, "realtime_upgrades_refused_total", reason="ip_not_allowed") == 0
        assert values.get(("websocket_handshakes_total", frozenset({("status", "101")})), 0) == 0
        client = await net.user("bob")  # a peer with an address in the list still connects
        await client.ping()

    drive(server, body)


def test_ip_allowlist_accepts_peers_inside_it(start_server):
    server = realtime(start_server, WS_IP_ALLOWLIST="10.0.0.0/8,127.0.0.0/8")

    async def body(net):
        client = await net.user("alice")
        await client.ping()

    drive(server, body)


def test_max_connections_refuses_the_fourth_upgrade_with_503(start_server):
    server = realtime(start_server, MAX_CONNECTIONS=3)

    async def body(net):
        clients = [await net.user(f"u{i}") for i in range(3)]
        status, doc = await net.refused(ws_url(server, "/ws", token("u3")))
        assert status == 503
        assert doc["error"]["code"] == "server_full"
        for i, c in enumerate(clients):
            await c.ping(nonce=str(i))
        # A freed slot takes a new connection.
        await clients[0].ws.close()

        async def fourth_fits():
            while True:
                try:
                    return await net.user("u3")
                except InvalidStatus:  # noqa: BLE001 - 503 until the slot is freed
                    await asyncio.sleep(0.05)

        late = await asyncio.wait_for(fourth_fits(), TIMEOUT)
        await late.ping()

    drive(server, body)


def test_max_message_size_closes_1009_and_echo_keeps_its_own_limit(start_server):
    server = realtime(start_server, WS_MAX_MESSAGE_SIZE="1KiB")

    async def body(net):
        client = await net.user("alice")
        pad = "x" * 900
        await client.send(message_type="ping", data={"pad": pad})  # under 1 KiB
        assert (await client.expect("pong"))["data"] == {"pad": pad}
        await client.send(message_type="ping", data={"pad": "y" * 2048})
        code, got = await client.closed_with()
        assert got == []
        assert code == 1009
        # The limit is on the message, not the frame: two 600-byte fragments are over it too.
        fragmented = await net.user("bob")
        await fragmented.ws.send(iter(['{"message_type":"ping","data":{"a":"' + "f" * 600, "g" * 600 + '"}}']))
        code, got = await fragmented.closed_with()
        assert (code, got) == (1009, [])
        echo = await net.raw(server.url("/echo"))
        big = "z" * 2048
        await echo.send(big)
        assert await asyncio.wait_for(echo.recv(), TIMEOUT) == big

    drive(server, body)


def test_default_max_message_size_is_512_kib(start_server):
    server = realtime(start_server)

    async def body(net):
        client = await net.user("alice")
        pad = "x" * (500 * 1024)
        await client.send(message_type="ping", data={"pad": pad})
        assert (await client.expect("pong"))["data"] == {"pad": pad}
        await client.send(message_type="ping", data={"pad": "y" * (513 * 1024)})
        code, got = await client.closed_with()
        assert (code, got) == (1009, [])

    drive(server, body)


def test_admin_http_broadcast_reaches_1000_clients_exactly_once(start_server):
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 200
    assert hard == resource.RLIM_INFINITY or hard >= need, f"open-files hard limit {hard} < {need}"
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    server = realtime(start_server, JWT_SECRET="")
    started = time.monotonic()

    async def body(net):
        gate = asyncio.Semaphore(64)

        async def one():
            async with gate:
                return await net.open("/ws")

        clients = await asyncio.gather(*(one() for _ in range(n)))
        assert len({c.user_id for c in clients}) == n
        for seq in (1, 2):  # 2 is the marker
            r = await ahttp(
                server, "POST", "/ws/broadcast", json={"message_type": "announcement", "data": {"seq": seq}}
            )
            assert r.status_code == 200
            assert r.json() == {"status": "sent", "delivered": n}

        async def received(c):
            return await c.until(lambda m: m["data"].get("seq") == 2, timeout=20)

        results = await asyncio.gather(*(received(c) for c in clients))
        for got in results:
            assert [(m["message_type"], m["data"]) for m in got] == [
                ("announcement", {"seq": 1}),
                ("announcement", {"seq": 2}),
            ], got
        leftovers = await asyncio.gather(*(c.quiet(0.2) for c in clients[:50]))
        assert all(x == [] for x in leftovers)

    try:
        drive(server, body, deadline=45)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert time.monotonic() - started < 45


# --- metrics --------------------------------------------------------------------------


def test_metrics_realtime_families_are_present_and_count(start_server):
    server = realtime(start_server, WS_JWT_LEEWAY="0")

    async def body(net):
        before = await asyncio.to_thread(scrape, server)
        for name in [
            "realtime_rooms",
            "realtime_room_members",
            "realtime_online_users",
            "realtime_connections",
            "realtime_messages_total",
            "realtime_rate_limited_total",
            "realtime_auth_failures_total",
            "realtime_upgrades_refused_total",
        ]:
            assert any(k[0] == name for k in before), f"{name} missing"
        assert metric(before, "realtime_rooms") == 2
        assert metric(before, "realtime_online_users") == 0

        url = ws_url(server, "/ws")
        await net.refused(url)
        for _ in range(2):
            await net.refused(ws_url(server, "/ws", token("x", secret="y" * 40)))
        await net.refused(ws_url(server, "/ws", token("x", ttl=-5)))

        alice = await net.user("alice")
        bob = await net.user("bob")
        await alice.join("lobby")
        await bob.join("lobby")
        for n in range(2):
            await alice.send(message_type="room_message", room="lobby", data={"n": n})
        await alice.send(message_type="text", room="lobby", data={"n": 2})
        await bob.until(lambda m: m["data"].get("n") == 2)
        await alice.send(message_type="private_message", to_user_id="bob", data={})
        await bob.until(of_type("private_message"))
        for i in range(3):
            await bob.ping(str(i))

        def settled():
            v = scrape(server)
            return v if metric(v, "realtime_room_members", room="lobby") == 2 else None

        after = await wait_until(settled, "lobby members on /metrics")
        failures = {
            dict(labels)["reason"]: v for (name, labels), v in after.items() if name == "realtime_auth_failures_total"
        }
        assert failures == {
            "missing_token": 1,
            "malformed_token": 0,
            "bad_signature": 2,
            "expired": 1,
            "not_yet_valid": 0,
            "algorithm_not_allowed": 0,
            "missing_claim": 0,
            "invalid_claim": 0,
        }
        messages = {dict(labels)["type"]: v for (name, labels), v in after.items() if name == "realtime_messages_total"}
        assert (messages["join"], messages["room_message"], messages["text"]) == (2, 2, 1)
        assert (messages["private_message"], messages["ping"], messages["broadcast"]) == (1, 3, 0)
        assert metric(after, "realtime_online_users") == 2
        assert metric(after, "realtime_connections") == 2
        assert metric(after, "realtime_room_members", room="general") == 0
        assert metric(after, "realtime_rooms") == 2

        await bob.ws.close()
        await wait_until(lambda: metric(scrape(server), "realtime_online_users") == 1, "one user online after bob left")
        gone = await asyncio.to_thread(scrape, server)
        assert metric(gone, "realtime_connections") == 1
        assert metric(gone, "realtime_room_members", room="lobby") == 1

    drive(server, body)


# --- admin API ------------------------------------------------------------------------


def test_admin_rooms_create_list_inspect_delete(start_server):
    server = realtime(start_server)

    async def body(net):
        r = await ahttp(
            server, "POST", "/ws/rooms", json={"id": "dev", "name": "Developers", "description": "code talk"}
        )
        assert r.status_code == 201
        created = r.json()
        assert (created["id"], created["name"], created["description"]) == ("dev", "Developers", "code talk")
        assert (created["client_count"], created["user_count"], created["message_count"]) == (0, 0, 0)
        r = await ahttp(server, "POST", "/ws/rooms", json={"id": "dev", "name": "Again"})
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "room_exists"

        listed = (await ahttp(server, "GET", "/ws/rooms")).json()
        assert [room["id"] for room in listed["rooms"]] == ["dev", "general", "lobby"]
        assert listed["total"] == 3

        alice = await net.user("alice")
        await alice.join("dev")
        await alice.send(message_type="room_message", room="dev", data={})
        await alice.expect("room_message")

        def inspected():
            doc = http(server, "GET", "/ws/rooms/dev").json()
            return doc if doc["user_count"] == 1 else None

        doc = await wait_until(inspected, "alice in dev")
        assert (doc["client_count"], doc["message_count"]) == (1, 1)
        assert [(m["user_id"], m["username"], m["connections"]) for m in doc["members"]] == [("alice", "Alice", 1)]
        assert (await ahttp(server, "GET", "/ws/rooms/nope")).status_code == 404

        r = await ahttp(server, "DELETE", "/ws/rooms/dev")
        assert (r.status_code, r.json()) == (200, {"deleted": "dev", "connections_removed": 1})
        assert (await alice.expect("room_deleted"))["data"] == {"room": "dev"}
        r = await ahttp(server, "DELETE", "/ws/rooms/dev")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "room_not_found")
        assert [room["id"] for room in (await ahttp(server, "GET", "/ws/rooms")).json()["rooms"]] == [
            "general",
            "lobby",
        ]

    drive(server, body)


def test_admin_rooms_limit_is_409(start_server):
    server = realtime(start_server, WS_MAX_ROOMS=3)  # general and lobby exist

    async def body(net):
        r = await ahttp(server, "POST", "/ws/rooms", json={"id": "third"})
        assert r.status_code == 201
        assert r.json()["name"] == "third"  # no name: the id
        r = await ahttp(server, "POST", "/ws/rooms", json={"id": "fourth"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "room_limit")

    drive(server, body)


def test_admin_rooms_bad_body_is_400(start_server):
    server = realtime(start_server)

    async def body(net):
        for data in [
            b"{not json",
            b'{"name": "no id"}',
            b'{"id": "x", "colour": "red"}',
            b'{"id": "a b"}',
            b'{"id": ""}',
        ]:
            r = await ahttp(server, "POST", "/ws/rooms", data=data, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (data, r.text)
            assert r.json()["error"]["code"] == "bad_request", r.text
        assert (await ahttp(server, "GET", "/ws/rooms")).json()["total"] == 2

    drive(server, body)


def test_admin_send_to_an_unknown_user_is_404(start_server):
    server = realtime(start_server)

    async def body(net):
        r = await ahttp(server, "POST", "/ws/send", json={"to_user_id": "ghost", "message_type": "notice", "data": {}})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "user_not_online")

    drive(server, body)


def test_admin_send_reaches_both_connections_of_a_user(start_server):
    server = realtime(start_server)

    async def body(net):
        bobs = await on_each_shard(net, lambda: net.user("bob"))
        await wait_until(lambda: online(server).get("bob") == 2, "bob's two connections")
        alice = await net.user("alice")
        for n in (1, 2):  # 2 is the marker
            r = await ahttp(
                server, "POST", "/ws/send", json={"to_user_id": "bob", "message_type": "notice", "data": {"n": n}}
            )
            assert r.status_code == 200
            assert r.json() == {"status": "sent", "to_user_id": "bob", "connections": 2}
        for bob in bobs:
            got = await bob.until(lambda m: m["data"].get("n") == 2)
            assert [(m["message_type"], m["data"], m["to_user_id"]) for m in got] == [
                ("notice", {"n": 1}, "bob"),
                ("notice", {"n": 2}, "bob"),
            ]
            assert "from_user_id" not in got[0]
        assert await alice.quiet() == []
        r = await ahttp(server, "POST", "/ws/send", json={"to_user_id": "bob", "message_type": "Bad Type"})
        assert r.status_code == 400

    drive(server, body)


def test_admin_messages_in_the_seed_form(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        bob = await net.user("bob")
        carol = await net.user("carol")  # in no room
        await alice.join("lobby")
        await wait_until(lambda: room_users(server, "lobby") == 1, "alice in lobby")
        await bob.join("lobby")
        assert (await alice.expect("user_joined"))["data"]["user_id"] == "bob"

        r = await ahttp(
            server, "POST", "/ws/messages", json={"type": "room_message", "room_id": "lobby", "content": "hello"}
        )
        assert (r.status_code, r.json()) == (200, {"status": "sent", "delivered": 2, "room": "lobby"})
        for c in (alice, bob):
            msg = await c.expect("room_message")
            assert (msg["data"], msg["room"]) == ({"content": "hello"}, "lobby")
        assert await carol.quiet() == []

        r = await ahttp(
            server, "POST", "/ws/messages", json={"type": "private_message", "to": "carol", "content": "psst"}
        )
        assert (r.status_code, r.json()["connections"]) == (200, 1)
        msg = await carol.expect("private_message")
        assert (msg["data"], msg["to_user_id"]) == ({"content": "psst"}, "carol")

        r = await ahttp(server, "POST", "/ws/messages", json={"type": "broadcast", "content": "all hands"})
        assert (r.status_code, r.json()) == (200, {"status": "sent", "delivered": 3})
        for c in (alice, bob, carol):
            assert (await c.expect("broadcast"))["data"] == {"content": "all hands"}

        for bad, status in [
            ({"type": "shout", "content": "x"}, 400),
            ({"type": "room_message", "content": "x"}, 400),
            ({"type": "private_message", "content": "x"}, 400),
            ({"type": "room_message", "room_id": "nowhere", "content": "x"}, 404),
            ({"type": "private_message", "to": "ghost", "content": "x"}, 404),
        ]:
            r = await ahttp(server, "POST", "/ws/messages", json=bad)
            assert r.status_code == status, (bad, r.text)
        for c in (alice, bob, carol):
            assert await c.quiet(0.1) == []

    drive(server, body)


def test_admin_broadcast_to_a_room_reaches_its_members_only(start_server):
    server = realtime(start_server)

    async def body(net):
        members, outsider = await members_on_each_shard(net, server, "lobby")
        r = await ahttp(
            server, "POST", "/ws/broadcast", json={"message_type": "announcement", "data": {"a": 1}, "room": "lobby"}
        )
        assert (r.status_code, r.json()) == (200, {"status": "sent", "delivered": 2, "room": "lobby"})
        for m in members:
            got = await m.until(of_type("announcement"))
            assert (got[-1]["data"], got[-1]["room"]) == ({"a": 1}, "lobby")
        assert await outsider.quiet() == []
        r = await ahttp(server, "POST", "/ws/broadcast", json={"message_type": "announcement", "room": "nowhere"})
        assert r.status_code == 404

    drive(server, body)


def test_admin_cleanup_with_idle_seconds_0_closes_idle_connections(start_server):
    server = realtime(start_server)

    async def body(net):
        alice = await net.user("alice")
        echo = await net.raw(server.url("/echo"))  # not a realtime connection
        r = await ahttp(server, "POST", "/ws/cleanup", json={"idle_seconds": 0})
        assert r.status_code == 200
        assert (r.json()["closed"], r.json()["idle_seconds"]) == (1, 0)
        code, got = await alice.closed_with()
        assert (code, got) == (1000, [])
        await echo.send("alive")
        assert await asyncio.wait_for(echo.recv(), TIMEOUT) == "alive"
        await wait_until(lambda: online(server) == {}, "nobody online")
        fresh = await net.user("fresh")
        r = await ahttp(server, "POST", "/ws/cleanup")  # no body: WS_CLEANUP_IDLE_TIMEOUT, 300 s
        assert (r.status_code, r.json()["closed"], r.json()["idle_seconds"]) == (200, 0, 300)
        await fresh.ping()

    drive(server, body)


def test_admin_cleanup_spares_recently_active_connections(start_server):
    server = realtime(start_server)

    async def body(net):
        idle = await net.user("idle")
        busy = await net.user("busy")
        await asyncio.sleep(1.5)
        await busy.ping()
        r = await ahttp(server, "POST", "/ws/cleanup", json={"idle_seconds": 1})
        assert (r.status_code, r.json()["closed"]) == (200, 1)
        assert (await idle.closed_with())[0] == 1000
        await busy.ping()

    drive(server, body)


def test_admin_online_lists_a_user_once_with_two_connections(start_server):
    server = realtime(start_server)

    async def body(net):
        await on_each_shard(net, lambda: net.user("alice"))
        await net.user("bob")
        await wait_until(lambda: online(server) == {"alice": 2, "bob": 1}, "alice twice, bob once")
        for path in ("/ws/online", "/ws/users/online"):
            doc = (await ahttp(server, "GET", path)).json()
            assert doc["count"] == 2
            users = sorted(doc["users"], key=lambda u: u["user_id"])
            assert [(u["user_id"], u["username"], u["connections"]) for u in users] == [
                ("alice", "Alice", 2),
                ("bob", "Bob", 1),
            ]
            assert all(u["connected_at"] for u in users)
        stats = (await ahttp(server, "GET", "/ws/stats")).json()
        assert (stats["total_connections"], stats["online_users"]) == (3, 2)

    drive(server, body)


def test_admin_token_is_required_when_set(start_server):
    server = realtime(start_server, ADMIN_TOKEN="s3cret-admin")

    async def body(net):
        alice = await net.user("alice")  # WebSocket clients need no admin token
        good = {"Authorization": "Bearer s3cret-admin"}
        bad = {"Authorization": "Bearer wrong"}
        for method, path, kw in [
            ("GET", "/ws/rooms", {}),
            ("GET", "/ws/online", {}),
            ("GET", "/ws/stats", {}),
            ("POST", "/ws/broadcast", {"json": {"message_type": "announcement", "data": {}}}),
        ]:
            for headers in ({}, bad):
                r = await ahttp(server, method, path, headers=headers, **kw)
                assert r.status_code == 401, (method, path, headers)
                assert r.json()["error"]["code"] == "unauthorized"
            r = await ahttp(server, method, path, headers=good, **kw)
            assert r.status_code == 200, (method, path)
        assert (await alice.expect("announcement"))["data"] == {}
        assert await alice.quiet() == []

    drive(server, body)
