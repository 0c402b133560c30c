"""The OCPP-J gateway on /ocpp/{charge_point_id}, seen by real charge points:
the `ocpp` library's 1.6 and 2.0.1 ChargePoint classes over the `websockets`
asyncio client (bare `websockets` for hand-made frames), and `requests` for the
admin API, downlink commands and /metrics. Every test starts its own ringgate
(two shards) through conftest's fixtures; every wait is bounded.

Helpers worth knowing:
- `Net.station(id)` connects a python-ocpp charge point (`Station16`, or
  `Station201` with `cls=`) and runs its receive loop; `Net.raw(id)` is a bare
  connection for frames written by hand (`rpc` sends one and reads the answer).
- `command(server, id, action, payload)` posts a downlink command off the event
  loop, so the charge points keep serving while it waits.
"""

import asyncio
import base64
import concurrent.futures
import datetime
import functools
import json
import os
import subprocess
import time
import urllib.parse

import pytest
from ocpp import exceptions as ocpp_errors
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import binary
import harness
from harness import metric, scrape

TIMEOUT = 10.0  # any single wait for a message or an answer
QUIET = 0.3  # how long "nothing more arrives" is watched
SHARDS = 2
TEST_DEADLINE = 40.0  # a whole async test body
V16, V201 = "ocpp1.6", "ocpp2.0.1"
PASSWORD = "secret"

BASE_ENV = {"RINGGATE_SHARDS": str(SHARDS)}


# --- servers, HTTP --------------------------------------------------------------------


def gateway(start_server, **env):
    """A two-shard ringgate, `env` on top."""
    full = dict(BASE_ENV)
    full.update({k: str(v) for k, v in env.items()})
    return start_server(env=full)


def quoted(cp_id):
    return urllib.parse.quote(cp_id, safe="")


def http(server, method, path, **kw):
    return harness.http(server, method, path, TIMEOUT + 5, **kw)


# Blocking HTTP runs on threads of its own: python-ocpp validates payloads on the loop's
# default executor, which 100 waiting requests would otherwise starve.
HTTP_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=128, thread_name_prefix="http")


async def off_loop(fn, *args, **kw):
    """`fn(*args, **kw)` on an HTTP thread, so open charge points keep serving meanwhile."""
    call = functools.partial(fn, *args, **kw)
    return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(HTTP_THREADS, call), TIMEOUT + 10)


async def ahttp(server, method, path, **kw):
    return await off_loop(http, server, method, path, **kw)


async def command(server, cp_id, action, payload=None, body=None, **extra):
    """POST /ocpp/{id}/commands; (status, JSON answer). `body` replaces the usual one."""
    if body is None:
        body = {"action": action, "payload": {} if payload is None else payload, **extra}
    kw = {"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, str) else {"json": body}
    r = await ahttp(server, "POST", f"/ocpp/{quoted(cp_id)}/commands", **kw)
    return r.status_code, r.json()


def station_facts(server, cp_id):
    return http(server, "GET", f"/ocpp/charge-points/{quoted(cp_id)}").json()


def pending(server):
    return metric(scrape(server), "ocpp_commands_pending")


def refusals(server):
    """{reason: count} of ocpp_upgrades_refused_total, zeros left out."""
    return {
        dict(labels)["reason"]: v
        for (name, labels), v in scrape(server).items()
        if name == "ocpp_upgrades_refused_total" and v
    }


async def wait_until(check, what, timeout=TIMEOUT):
    """Polls the (blocking) `check` until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if last := await off_loop(check):
            return last
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@functools.cache
def password_hash(password=PASSWORD):
    out = subprocess.run(
        [binary(), "--hash-password"], input=password + "\n", capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout.strip()


def basic(user, password=PASSWORD):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(timestamp):
    """Seconds since an RFC 3339 timestamp."""
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.datetime.now(datetime.timezone.utc) - then).total_seconds()


# --- charge points --------------------------------------------------------------------


class Recording:
    """Mixed into a python-ocpp ChargePoint: `ws` is its connection, `asked` keeps the
    commands it was sent and answered."""

    def __init__(self, cp_id, ws):
        super().__init__(cp_id, ws, response_timeout=TIMEOUT)
        self.ws = ws
        self.asked = []


class Station16(Recording, ChargePoint16):
    """A 1.6 charge point answering Reset, GetConfiguration and RemoteStartTransaction;
    other commands get python-ocpp's NotImplemented."""

    subprotocol = V16

    @on(Action16.reset)
    def on_reset(self, type):
        self.asked.append(("Reset", type))
        return result16.Reset(status="Accepted")

    @on(Action16.get_configuration)
    def on_get_configuration(self, key=None):
        self.asked.append(("GetConfiguration", key))
        return result16.GetConfiguration(configuration_key=[{"key": "Identity", "readonly": True, "value": self.id}])

    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag, connector_id=None, **_):
        self.asked.append(("RemoteStartTransaction", id_tag, connector_id))
        return result16.RemoteStartTransaction(status="Accepted")

    async def boot(self, **fields):
        fields = {"charge_point_model": "Model-T", "charge_point_vendor": "Acme", **fields}
        return await ask(self, call16.BootNotification(**fields))


class Station201(Recording, ChargePoint201):
    """A 2.0.1 charge point answering Reset."""

    subprotocol = V201

    @on(Action201.reset)
    def on_reset(self, type, evse_id=None, **_):
        self.asked.append(("Reset", type))
        return result201.Reset(status="Accepted")

    async def boot(self):
        station = {"model": "Model-X", "vendor_name": "Acme", "firmware_version": "2.0", "serial_number": "SN-9"}
        return await ask(self, call201.BootNotification(charging_station=station, reason="PowerUp"))


async def ask(cp, payload):
    """A CALL from the charge point; a CALLERROR raises its ocpp.exceptions class."""
    return await asyncio.wait_for(cp.call(payload, suppress=False), TIMEOUT)


async def serve(cp):
    try:
        await cp.start()
    except ConnectionClosed:
        pass


def cp_url(server, cp_id, quote=True):
    return server.url("/ocpp/" + (quoted(cp_id) if quote else cp_id))


def ws_options(**kw):
    return harness.ws_options(TIMEOUT, **kw)


class Net:
    """The connections one test opened; all closed at the end."""

    def __init__(self, server):
        self.server = server
        self.sockets = []
        self.tasks = []

    async def open(self, cp_id, protocols=(V16,), quote=True, **kw):
        """A connection offering `protocols` (None: no Sec-WebSocket-Protocol)."""
        protocols = list(protocols) if protocols else None
        ws = await asyncio.wait_for(
            connect(cp_url(self.server, cp_id, quote), subprotocols=protocols, **ws_options(**kw)), TIMEOUT + 5
        )
        self.sockets.append(ws)
        return ws

    async def raw(self, cp_id, protocol=V16, **kw):
        """A bare connection; its subprotocol is checked."""
        ws = await self.open(cp_id, (protocol,), **kw)
        assert ws.subprotocol == protocol
        return ws

    async def station(self, cp_id, cls=Station16, **kw):
        """A python-ocpp charge point with its receive loop running."""
        ws = await self.raw(cp_id, cls.subprotocol, **kw)
        cp = cls(cp_id, ws)
        self.tasks.append(asyncio.create_task(serve(cp)))
        return cp

    async def refused(self, cp_id, protocols=(V16,), **kw):
        """The status and JSON error code of an upgrade the server refuses."""
        with pytest.raises(InvalidStatus) as err:
            await self.open(cp_id, protocols, **kw)
        response = err.value.response
        return response.status_code, json.loads(bytes(response.body))["error"]["code"]

    async def aclose(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.wait_for(
            asyncio.gather(*self.tasks, *(ws.close() for ws in self.sockets), return_exceptions=True),
            TIMEOUT + 5,
        )


def drive(server, body, deadline=TEST_DEADLINE):
    harness.drive(Net(server), body, deadline)


async def receive(ws, timeout=TIMEOUT):
    """The next frame, decoded."""
    try:
        raw = await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        pytest.fail(f"no message within {timeout}s")
    assert isinstance(raw, str), f"expected a text frame, got {raw!r}"
    return json.loads(raw)


async def rpc(ws, frame):
    """Sends `frame` (a list, or text as is) and returns the next frame."""
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    return await receive(ws)


async def quiet(ws, duration=QUIET):
    """What arrives within `duration` (usually asserted to be nothing)."""
    got = []
    deadline = asyncio.get_running_loop().time() + duration
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            got.append(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            break
    return got


async def heartbeat(ws, message_id="hb"):
    """A hand-made Heartbeat whose CALLRESULT must be the next frame."""
    answer = await rpc(ws, [2, message_id, "Heartbeat", {}])
    assert answer[:2] == [3, message_id] and set(answer[2]) == {"currentTime"}, answer


async def closed_with(ws, timeout=TIMEOUT):
    """Waits for the server's close; returns its code."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code


# --- the route: subprotocols, ids, authentication ----------------------------------------


def test_server_picks_the_first_of_its_own_protocols_the_client_offers(start_server):
    server = gateway(start_server)

    async def body(net):
        assert (await net.open("A", [V201, V16])).subprotocol == V16
        assert (await net.open("B", [V201])).subprotocol == V201
        assert (await net.open("C", ["wamp", V16])).subprotocol == V16

    drive(server, body)
    preferring_201 = gateway(start_server, OCPP_PROTOCOLS="ocpp2.0.1,ocpp1.6")

    async def body_201(net):
        assert (await net.open("A", [V16, V201])).subprotocol == V201
        assert (await net.open("B", [V16])).subprotocol == V16

    drive(preferring_201, body_201)


def test_no_supported_subprotocol_is_400_and_counted(start_server):
    server = gateway(start_server, OCPP_PROTOCOLS="ocpp1.6")

    async def body(net):
        assert await net.refused("A", protocols=None) == (400, "no_supported_subprotocol")
        assert await net.refused("A", protocols=["ocpp1.5", "wamp"]) == (400, "no_supported_subprotocol")
        assert await net.refused("A", protocols=[V201]) == (400, "no_supported_subprotocol")
        assert await off_loop(refusals, server) == {"no_supported_subprotocol": 3}

    drive(server, body)


@pytest.mark.parametrize(
    "path_id",
    ["x" * 49, "CP%201", "CP%2F1", "CP%0A1", "CP%7F", "%C3%A9t%C3%A9", "%FF"],
    ids=["49-chars", "space", "slash", "newline", "del", "non-ascii", "not-utf8"],
)
def test_invalid_charge_point_id_is_404(start_server, path_id):
    server = gateway(start_server)

    async def body(net):
        assert await net.refused(path_id, quote=False) == (404, "invalid_charge_point_id")
        assert await off_loop(refusals, server) == {"invalid_charge_point_id": 1}

    drive(server, body)


def test_charge_point_id_is_the_percent_decoded_segment_up_to_48_chars(start_server):
    server = gateway(start_server)
    longest, odd = "L" * 48, "CP-1_a.b~!$&'()*+,;=:@%"

    async def body(net):
        await net.open(longest)
        await net.open(quoted(odd), quote=False)
        await net.open("CP%2D2", quote=False)
        for cp_id in (longest, odd, "CP-2"):
            facts = await off_loop(station_facts, server, cp_id)
            assert (facts["id"], facts["connected"]) == (cp_id, True)

    drive(server, body)


def test_ids_outside_OCPP_ALLOWED_IDS_are_404_unknown_charge_point(start_server):
    server = gateway(start_server, OCPP_ALLOWED_IDS="CP1,CP2")

    async def body(net):
        await net.open("CP1")
        await net.open("CP2")
        assert await net.refused("CP3") == (404, "unknown_charge_point")
        assert await net.refused("cp1") == (404, "unknown_charge_point")
        assert await off_loop(refusals, server) == {"unknown_charge_point": 2}

    drive(server, body)


def test_basic_auth_checks_the_password_of_charge_points_that_have_one(start_server):
    hashed = password_hash()
    server = gateway(start_server, OCPP_PASSWORDS=f"CP1={hashed}\n CP2={hashed}")

    async def body(net):
        cp = await net.station("CP1", additional_headers=basic("CP1"))
        assert (await cp.boot()).status == "Accepted"
        assert await net.refused("CP2", additional_headers=basic("CP2", "wrong")) == (401, "wrong_password")
        assert await net.refused("CP2") == (401, "missing_credentials")
        assert await net.refused("CP2", additional_headers=basic("CP1")) == (401, "wrong_user")
        await net.open("CP3")  # no entry, and OCPP_AUTH_REQUIRED is off
        assert await off_loop(refusals, server) == {
            "wrong_password": 1,
            "missing_credentials": 1,
            "wrong_user": 1,
        }

    drive(server, body)


def test_auth_required_refuses_ids_without_a_password_entry(start_server):
    server = gateway(start_server, OCPP_AUTH_REQUIRED="true", OCPP_PASSWORDS=f"CP1={password_hash()}")

    async def body(net):
        await net.open("CP1", additional_headers=basic("CP1"))
        assert await net.refused("CP3") == (401, "no_password_configured")
        assert await net.refused("CP3", additional_headers=basic("CP3")) == (401, "no_password_configured")
        assert await off_loop(refusals, server) == {"no_password_configured": 2}

    drive(server, body)


# --- the embedded central system, 1.6 ---------------------------------------------------


def test_v16_boot_heartbeat_and_status_notification_are_answered_and_remembered(start_server):
    server = gateway(start_server, OCPP_HEARTBEAT_INTERVAL="42s")

    async def body(net):
        cp = await net.station("CP1")
        boot = await cp.boot(firmware_version="1.2.3", charge_point_serial_number="SN-1")
        assert (boot.status, boot.interval) == ("Accepted", 42)
        assert abs(age(boot.current_time)) < 30
        beat = await ask(cp, call16.Heartbeat())
        assert abs(age(beat.current_time)) < 30
        status = call16.StatusNotification(
            connector_id=1, error_code="NoError", status="Available", info="ready", timestamp=now()
        )
        assert await ask(cp, status) == result16.StatusNotification()

        facts = await off_loop(station_facts, server, "CP1")
        host, port = cp.ws.local_address[:2]
        assert facts["id"] == "CP1" and facts["connected"] is True and facts["protocol"] == V16
        assert facts["remote_addr"] == f"{host}:{port}"
        assert (facts["vendor"], facts["model"]) == ("Acme", "Model-T")
        assert (facts["firmware_version"], facts["serial_number"]) == ("1.2.3", "SN-1")
        assert facts["boot_status"] == "Accepted" and facts["disconnected_at"] is None
        for stamp in ("connected_at", "last_boot", "last_heartbeat", "last_message"):
            assert abs(age(facts[stamp])) < 30, stamp
        [connector] = facts["connectors"]
        assert (connector["connector_id"], connector["status"]) == (1, "Available")
        assert (connector["error_code"], connector["info"]) == ("NoError", "ready")
        assert facts["transactions"] == []

    drive(server, body)


@pytest.mark.parametrize("setting,status", [("pending", "Pending"), ("rejected", "Rejected")])
def test_boot_status_follows_OCPP_BOOT_STATUS(start_server, setting, status):
    server = gateway(start_server, OCPP_BOOT_STATUS=setting)

    async def body(net):
        cp = await net.station("CP1")
        assert (await cp.boot()).status == status
        facts = await off_loop(station_facts, server, "CP1")
        assert facts["boot_status"] == status

    drive(server, body)


def test_after_a_rejected_boot_other_calls_get_security_error(start_server):
    server = gateway(start_server, OCPP_BOOT_STATUS="rejected")

    async def body(net):
        cp = await net.station("CP1")
        assert (await cp.boot()).status == "Rejected"
        with pytest.raises(ocpp_errors.SecurityError):
            await ask(cp, call16.Heartbeat())
        with pytest.raises(ocpp_errors.SecurityError):
            await ask(cp, call16.Authorize(id_tag="TAG"))

    drive(server, body)


def test_authorize_accepts_every_tag_unless_OCPP_ID_TAGS_is_set(start_server):
    async def statuses(net):
        cp = await net.station("CP1")
        await cp.boot()
        return [(await ask(cp, call16.Authorize(id_tag=tag))).id_tag_info["status"] for tag in ("GOOD", "BAD")]

    async def open_body(net):
        assert await statuses(net) == ["Accepted", "Accepted"]

    async def listed_body(net):
        assert await statuses(net) == ["Accepted", "Invalid"]

    drive(gateway(start_server), open_body)
    drive(gateway(start_server, OCPP_ID_TAGS="GOOD,OTHER"), listed_body)


def test_v16_transactions_get_unique_ids_and_are_forgotten_when_stopped(start_server):
    server = gateway(start_server)

    async def body(net):
        cp = await net.station("CP1")
        await cp.boot()

        def start(connector, tag, meter):
            return call16.StartTransaction(connector_id=connector, id_tag=tag, meter_start=meter, timestamp=now())

        started = [await ask(cp, start(c, f"TAG{c}", 100 * c)) for c in (1, 2)]
        ids = [s.transaction_id for s in started]
        assert all(isinstance(i, int) and i > 0 for i in ids) and ids[0] != ids[1]
        assert all(s.id_tag_info["status"] == "Accepted" for s in started)
        meter = [{"timestamp": now(), "sampledValue": [{"value": "150"}]}]
        meter_values = call16.MeterValues(connector_id=1, transaction_id=ids[0], meter_value=meter)
        assert await ask(cp, meter_values) == result16.MeterValues()

        facts = await off_loop(station_facts, server, "CP1")
        by_id = {t["transaction_id"]: t for t in facts["transactions"]}
        assert sorted(by_id) == sorted(str(i) for i in ids)
        first, second = by_id[str(ids[0])], by_id[str(ids[1])]
        assert (first["connector_id"], first["id_tag"], first["meter_start"]) == (1, "TAG1", 100)
        assert (second["connector_id"], second["id_tag"], second["meter_start"]) == (2, "TAG2", 200)
        assert abs(age(first["started_at"])) < 30 and abs(age(first["last_meter_at"])) < 30

        stop = call16.StopTransaction(meter_stop=180, timestamp=now(), transaction_id=ids[0], id_tag="TAG1")
        assert (await ask(cp, stop)).id_tag_info["status"] == "Accepted"
        stop = call16.StopTransaction(meter_stop=250, timestamp=now(), transaction_id=ids[1])
        assert await ask(cp, stop) == result16.StopTransaction()
        facts = await off_loop(station_facts, server, "CP1")
        assert facts["transactions"] == []

        again = await ask(cp, start(1, "TAG1", 0))
        assert again.transaction_id not in ids

    drive(server, body)


def test_v16_data_transfer_is_accepted_and_other_actions_are_not_implemented(start_server):
    server = gateway(start_server)

    async def body(net):
        cp = await net.station("CP1")
        await cp.boot()
        answer = await ask(cp, call16.DataTransfer(vendor_id="acme", message_id="ping", data="{}"))
        assert answer.status == "Accepted"
        with pytest.raises(ocpp_errors.NotImplementedError):
            await ask(cp, call16.DiagnosticsStatusNotification(status="Idle"))
        with pytest.raises(ocpp_errors.NotImplementedError):
            await ask(cp, call16.FirmwareStatusNotification(status="Installed"))
        await ask(cp, call16.Heartbeat())

    drive(server, body)


# --- the embedded central system, 2.0.1 -------------------------------------------------


def test_v201_charge_point_boots_transacts_and_is_remembered(start_server):
    server = gateway(start_server, OCPP_HEARTBEAT_INTERVAL="60s", OCPP_ID_TAGS="GOOD")

    async def body(net):
        cp = await net.station("EV1", cls=Station201)
        boot = await cp.boot()
        assert (boot.status, boot.interval) == ("Accepted", 60) and abs(age(boot.current_time)) < 30
        assert abs(age((await ask(cp, call201.Heartbeat())).current_time)) < 30
        status = call201.StatusNotification(timestamp=now(), connector_status="Occupied", evse_id=1, connector_id=1)
        assert await ask(cp, status) == result201.StatusNotification()
        good, bad = {"id_token": "GOOD", "type": "ISO14443"}, {"id_token": "BAD", "type": "ISO14443"}
        assert (await ask(cp, call201.Authorize(id_token=good))).id_token_info["status"] == "Accepted"
        assert (await ask(cp, call201.Authorize(id_token=bad))).id_token_info["status"] == "Invalid"

        def event(event_type, seq_no, **fields):
            return call201.TransactionEvent(
                event_type=event_type,
                timestamp=now(),
                trigger_reason="Authorized",
                seq_no=seq_no,
                transaction_info={"transaction_id": "tx-1"},
                **fields,
            )

        evse = {"id": 1, "connector_id": 1}
        started = await ask(cp, event("Started", 0, evse=evse, id_token=good))
        assert started.id_token_info["status"] == "Accepted"
        assert await ask(cp, event("Updated", 1)) == result201.TransactionEvent()
        meter = [{"timestamp": now(), "sampled_value": [{"value": 1.5}]}]
        assert await ask(cp, call201.MeterValues(evse_id=1, meter_value=meter)) == result201.MeterValues()

        facts = await off_loop(station_facts, server, "EV1")
        assert (facts["protocol"], facts["boot_status"]) == (V201, "Accepted")
        assert (facts["vendor"], facts["model"]) == ("Acme", "Model-X")
        assert (facts["firmware_version"], facts["serial_number"]) == ("2.0", "SN-9")
        [connector] = facts["connectors"]
        assert (connector["evse_id"], connector["connector_id"], connector["status"]) == (1, 1, "Occupied")
        [tx] = facts["transactions"]
        assert (tx["transaction_id"], tx["evse_id"], tx["connector_id"], tx["id_tag"]) == ("tx-1", 1, 1, "GOOD")

        assert await ask(cp, event("Ended", 2)) == result201.TransactionEvent()
        assert (await off_loop(station_facts, server, "EV1"))["transactions"] == []
        with pytest.raises(ocpp_errors.NotImplementedError):
            await ask(cp, call201.FirmwareStatusNotification(status="Installed"))

    drive(server, body)


# --- payload validation and framing ------------------------------------------------------

BOOT16 = {"chargePointVendor": "Acme", "chargePointModel": "M"}
STATION201 = {"model": "M", "vendorName": "Acme"}


@pytest.mark.parametrize(
    "protocol,action,payload,code",
    [
        (V16, "BootNotification", {"chargePointVendor": "Acme"}, "OccurenceConstraintViolation"),
        (V16, "BootNotification", {**BOOT16, "chargePointModel": 5}, "TypeConstraintViolation"),
        (V16, "Authorize", {"idTag": ["T"]}, "TypeConstraintViolation"),
        (V16, "StatusNotification", {"connectorId": 1, "errorCode": "Bogus", "status": "Available"},
         "PropertyConstraintViolation"),
        (V16, "BootNotification", {**BOOT16, "chargePointVendor": "V" * 21}, "PropertyConstraintViolation"),
        (V201, "BootNotification", {"reason": "PowerUp"}, "OccurrenceConstraintViolation"),
        (V201, "BootNotification", {"reason": "PowerUp", "chargingStation": {**STATION201, "model": 5}},
         "TypeConstraintViolation"),
        (V201, "BootNotification", {"reason": "Bogus", "chargingStation": STATION201}, "PropertyConstraintViolation"),
        (V201, "BootNotification", {"reason": "PowerUp", "chargingStation": {**STATION201, "model": "M" * 21}},
         "PropertyConstraintViolation"),
    ],
    ids=["16-missing", "16-type", "16-type-array", "16-enum", "16-too-long",
         "201-missing", "201-type", "201-enum", "201-too-long"],
)
def test_payloads_are_checked_against_the_schemas(start_server, protocol, action, payload, code):
    server = gateway(start_server)

    async def body(net):
        ws = await net.raw("CP1", protocol)
        answer = await rpc(ws, [2, "m1", action, payload])
        assert answer[:3] == [4, "m1", code], answer
        assert isinstance(answer[3], str) and isinstance(answer[4], dict)
        await heartbeat(ws)

    drive(server, body)


TOO_LONG_ID = "i" * 37
NO_ANSWER = None

# (frame text, 1.6 answer, 2.0.1 answer); an answer is (message id, error code).
FRAME_ERRORS = {
    "not-json": ("not json", NO_ANSWER, ("-1", "FormatViolation")),
    "truncated-json": ('[2,"m1","Heartbeat",{', NO_ANSWER, ("-1", "FormatViolation")),
    "not-an-array": ('{"a": 1}', NO_ANSWER, ("-1", "RpcFrameworkError")),
    "empty-array": ("[]", NO_ANSWER, ("-1", "RpcFrameworkError")),
    "three-elements": ('[2,"m1","Heartbeat"]', ("m1", "ProtocolError"), ("m1", "RpcFrameworkError")),
    "id-not-a-string": ('[2,17,"Heartbeat",{}]', NO_ANSWER, ("-1", "RpcFrameworkError")),
    "id-too-long": (f'[2,"{TOO_LONG_ID}","Heartbeat",{{}}]', (TOO_LONG_ID, "FormationViolation"),
                    (TOO_LONG_ID, "FormatViolation")),
    "payload-not-an-object": ('[2,"m1","Heartbeat",[]]', ("m1", "FormationViolation"), ("m1", "FormatViolation")),
    "unknown-type": ('[5,"m1","Heartbeat",{}]', ("m1", "NotSupported"), ("m1", "MessageTypeNotSupported")),
}


@pytest.mark.parametrize("protocol", [V16, V201])
@pytest.mark.parametrize("case", FRAME_ERRORS)
def test_malformed_frames_are_answered_per_version_and_the_connection_stays(start_server, case, protocol):
    server = gateway(start_server)
    text, answer16, answer201 = FRAME_ERRORS[case]
    expected = answer16 if protocol == V16 else answer201

    async def body(net):
        ws = await net.raw("CP1", protocol)
        await ws.send(text)
        if expected is not NO_ANSWER:
            answer = await receive(ws)
            assert answer[:3] == [4, *expected], answer
        await heartbeat(ws)  # nothing else came first, and the connection stays
        values = await off_loop(scrape, server)
        assert metric(values, "ocpp_frame_errors_total") == 1

    drive(server, body)


def test_a_36_char_message_id_is_fine(start_server):
    server = gateway(start_server)

    async def body(net):
        await heartbeat(await net.raw("CP1", V16), "i" * 36)

    drive(server, body)


@pytest.mark.parametrize("protocol", [V16, V201])
def test_binary_frame_closes_1003(start_server, protocol):
    server = gateway(start_server)

    async def body(net):
        ws = await net.raw("CP1", protocol)
        await ws.send(b"[2,\"m1\",\"Heartbeat\",{}]")
        assert await closed_with(ws) == 1003

    drive(server, body)


# --- the admin API --------------------------------------------------------------------


def test_unknown_charge_point_is_404(start_server):
    server = gateway(start_server)
    r = http(server, "GET", "/ocpp/charge-points/NOPE")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_charge_point"


def test_charge_point_list_pages_in_id_order_and_filters_on_connected(start_server):
    server = gateway(start_server)
    ids = ["a1", "a2", "b1", "b2", "c1"]

    async def body(net):
        sockets = {cp_id: await net.open(cp_id) for cp_id in reversed(ids)}
        for cp_id in ("a2", "c1"):
            await sockets[cp_id].close()
        await wait_until(lambda: not station_facts(server, "c1")["connected"], "c1 disconnected")
        await wait_until(lambda: not station_facts(server, "a2")["connected"], "a2 disconnected")

        def walk(query):
            seen, after, pages = [], None, 0
            while True:
                path = f"/ocpp/charge-points?limit=2{query}" + (f"&after={after}" if after else "")
                page = http(server, "GET", path).json()
                pages += 1
                assert len(page["charge_points"]) <= 2 and abs(age(page["timestamp"])) < 30
                seen += [(cp["id"], cp["connected"]) for cp in page["charge_points"]]
                after = page["next"]
                if after is None:
                    return seen, page["total"], pages
                assert after == seen[-1][0]

        everything, total, pages = await off_loop(walk, "")
        assert everything == [(i, i not in ("a2", "c1")) for i in ids]
        assert (total, pages) == (5, 3)
        assert await off_loop(walk, "&connected=true") == ([("a1", True), ("b1", True), ("b2", True)], 3, 2)
        assert await off_loop(walk, "&connected=false") == ([("a2", False), ("c1", False)], 2, 1)
        facts = await off_loop(station_facts, server, "c1")
        assert facts["connected"] is False and abs(age(facts["disconnected_at"])) < 30

    drive(server, body)


def test_connections_lists_charge_points_by_id_with_their_subprotocol(start_server):
    server = gateway(start_server)

    async def body(net):
        for cp_id in ("CP1", "CP2", "CP3", "CP4"):
            await net.open(cp_id)
        await net.open("EV1", [V201])
        conns = (await ahttp(server, "GET", "/connections?limit=100")).json()["connections"]
        assert sorted(conns) == ["CP1", "CP2", "CP3", "CP4", "EV1"]
        assert {c["subprotocol"] for k, c in conns.items() if k != "EV1"} == {V16}
        assert conns["EV1"]["subprotocol"] == V201

    drive(server, body)


# --- downlink commands ----------------------------------------------------------------


def test_v16_commands_reach_the_charge_point_and_carry_its_answer(start_server):
    server = gateway(start_server)

    async def body(net):
        cp = await net.station("CP1")
        await cp.boot()
        status, doc = await command(server, "CP1", "RemoteStartTransaction", {"idTag": "TAG", "connectorId": 2})
        assert status == 200, doc
        assert doc["status"] == "accepted" and doc["result"] == {"status": "Accepted"}
        assert (doc["charge_point_id"], doc["action"]) == ("CP1", "RemoteStartTransaction")
        assert isinstance(doc["duration_ms"], (int, float)) and 0 <= doc["duration_ms"] < TIMEOUT * 1000
        status, doc = await command(server, "CP1", "Reset", {"type": "Soft"}, timeout_ms=30000)
        assert (status, doc["result"]) == (200, {"status": "Accepted"})
        status, doc = await command(server, "CP1", "GetConfiguration", {"key": ["Identity"]})
        identity = {"key": "Identity", "readonly": True, "value": "CP1"}
        assert (status, doc["result"]) == (200, {"configurationKey": [identity]})
        assert cp.asked == [("RemoteStartTransaction", "TAG", 2), ("Reset", "Soft"), ("GetConfiguration", ["Identity"])]

    drive(server, body)


def test_v201_command_reset_immediate(start_server):
    server = gateway(start_server)

    async def body(net):
        cp = await net.station("EV1", cls=Station201)
        await cp.boot()
        status, doc = await command(server, "EV1", "Reset", {"type": "Immediate"})
        assert (status, doc["status"], doc["result"]) == (200, "accepted", {"status": "Accepted"})
        assert cp.asked == [("Reset", "Immediate")]

    drive(server, body)


def test_a_call_error_answer_is_502_with_the_error(start_server):
    server = gateway(start_server)

    async def body(net):
        await net.station("CP1")  # python-ocpp has no UnlockConnector handler here
        status, doc = await command(server, "CP1", "UnlockConnector", {"connectorId": 1})
        assert status == 502, doc
        error = doc["call_error"]
        assert error["code"] == "NotImplemented" and isinstance(error["description"], str)
        assert "UnlockConnector" in error["details"]["cause"]

    drive(server, body)


def test_commands_to_absent_charge_points_are_404_not_connected(start_server):
    server = gateway(start_server)

    async def body(net):
        ws = await net.open("GONE")
        await ws.close()
        await wait_until(lambda: not station_facts(server, "GONE")["connected"], "GONE disconnected")
        for cp_id in ("GONE", "NEVER"):
            status, doc = await command(server, cp_id, "Reset", {"type": "Soft"})
            assert (status, doc["error"]["code"]) == (404, "not_connected")

    drive(server, body)


@pytest.mark.parametrize(
    "body",
    [
        {"payload": {}},
        {"action": "", "payload": {}},
        {"action": 5, "payload": {}},
        {"action": "Reset", "payload": []},
        {"action": "Reset", "payload": "type=Soft"},
        {"action": "Reset", "payload": {"type": "Soft"}, "timeout_ms": -1},
        {"action": "Reset", "payload": {"type": "Soft"}, "timeout_ms": "500"},
        {"action": "Reset", "payload": {"type": "Soft"}, "timeout_ms": 10**12},
        '{"action": "Reset",',
    ],
    ids=["no-action", "empty-action", "action-number", "payload-array", "payload-string",
         "timeout-negative", "timeout-string", "timeout-huge", "not-json"],
)
def test_bad_command_bodies_are_400_and_send_nothing(start_server, body):
    server = gateway(start_server)

    async def run(net):
        ws = await net.raw("CP1")
        status, doc = await command(server, "CP1", None, body=body)
        assert status == 400, doc
        assert await quiet(ws) == []

    drive(server, run)


def test_a_timed_out_command_is_504_and_the_next_one_gets_its_own_answer(start_server):
    server = gateway(start_server)

    async def body(net):
        ws = await net.raw("CP1")
        started = time.monotonic()
        status, doc = await command(server, "CP1", "Reset", {"type": "Soft"}, timeout_ms=500)
        assert (status, doc["error"]["code"]) == (504, "timeout")
        assert 0.5 <= time.monotonic() - started < 5
        late = await receive(ws)
        assert late[0] == 2 and late[2:] == ["Reset", {"type": "Soft"}]

        second = asyncio.create_task(command(server, "CP1", "GetConfiguration", {"key": ["K"]}))
        call = await receive(ws)  # the second command goes out though the first got no answer
        assert call[0] == 2 and call[2:] == ["GetConfiguration", {"key": ["K"]}] and call[1] != late[1]
        await ws.send(json.dumps([3, late[1], {"status": "Rejected"}]))  # too late: dropped
        await ws.send(json.dumps([3, call[1], {"unknownKey": ["K"]}]))
        status, doc = await asyncio.wait_for(second, TIMEOUT + 10)
        assert (status, doc["result"]) == (200, {"unknownKey": ["K"]})

    drive(server, body)


def test_commands_to_one_charge_point_go_one_at_a_time_in_order(start_server):
    server = gateway(start_server)

    async def body(net):
        ws = await net.raw("CP1")
        keys = ["A", "B", "C"]
        posted = []
        for n, key in enumerate(keys, 1):
            posted.append(asyncio.create_task(command(server, "CP1", "GetConfiguration", {"key": [key]})))
            await wait_until(lambda: pending(server) == n, f"{n} commands pending")
        for key in keys:
            call = await receive(ws)
            assert call[0] == 2 and call[2:] == ["GetConfiguration", {"key": [key]}]
            assert await quiet(ws) == [], "a second command went out before the first was answered"
            await ws.send(json.dumps([3, call[1], {"unknownKey": [key]}]))
        answers = await asyncio.wait_for(asyncio.gather(*posted), TIMEOUT + 10)
        assert [(s, d["result"]) for s, d in answers] == [(200, {"unknownKey": [k]}) for k in keys]
        await wait_until(lambda: pending(server) == 0, "no command pending")

    drive(server, body)


def test_a_full_queue_is_429_and_waiting_commands_get_502_when_the_charge_point_leaves(start_server):
    server = gateway(start_server, OCPP_MAX_QUEUED_COMMANDS="2")

    async def body(net):
        ws = await net.raw("CP1")
        waiting = [asyncio.create_task(command(server, "CP1", "Reset", {"type": "Soft"})) for _ in range(3)]
        await wait_until(lambda: pending(server) == 3, "one outstanding command and two queued")
        status, doc = await command(server, "CP1", "Reset", {"type": "Hard"})
        assert (status, doc["error"]["code"]) == (429, "queue_full")
        await receive(ws)  # the outstanding one, never answered
        await ws.close()
        answers = await asyncio.wait_for(asyncio.gather(*waiting), TIMEOUT + 10)
        assert [(s, d["error"]["code"]) for s, d in answers] == [(502, "disconnected")] * 3
        await wait_until(lambda: pending(server) == 0, "no command pending")

    drive(server, body)


def test_100_charge_points_on_both_shards_each_get_their_own_answer(start_server):
    server = gateway(start_server)
    ids = [f"cp{n:03}" for n in range(100)]

    async def body(net):
        stations = await asyncio.gather(*(net.station(cp_id) for cp_id in ids))
        conns = (await ahttp(server, "GET", "/connections?limit=1000")).json()["connections"]
        assert sorted(conns) == ids
        assert {c["shard"] for c in conns.values()} == set(range(SHARDS))
        answers = await asyncio.gather(*(command(server, cp_id, "GetConfiguration") for cp_id in ids))
        for cp_id, (status, doc) in zip(ids, answers):
            assert status == 200, (cp_id, doc)
            assert doc["charge_point_id"] == cp_id
            assert doc["result"]["configurationKey"][0]["value"] == cp_id
        assert all(s.asked == [("GetConfiguration", None)] for s in stations)

    drive(server, body)


def test_a_second_connection_with_the_same_id_replaces_the_first(start_server):
    server = gateway(start_server)

    async def body(net):
        first = await net.station("DUP")
        second = await net.station("DUP")
        assert await closed_with(first.ws) == 4000
        facts = await off_loop(station_facts, server, "DUP")
        host, port = second.ws.local_address[:2]
        assert facts["connected"] is True and facts["remote_addr"] == f"{host}:{port}"
        status, doc = await command(server, "DUP", "Reset", {"type": "Hard"})
        assert (status, doc["result"]) == (200, {"status": "Accepted"})
        assert (first.asked, second.asked) == ([], [("Reset", "Hard")])
        values = await off_loop(scrape, server)
        assert metric(values, "ocpp_charge_points_connected", protocol=V16) == 1

    drive(server, body)


# --- metrics, events, idle timeout ------------------------------------------------------


def test_metrics_count_charge_points_calls_and_refusals(start_server):
    server = gateway(start_server)

    async def body(net):
        cp = await net.station("CP1")
        await cp.boot()
        await net.station("EV1", cls=Station201)
        await net.station("EV2", cls=Station201)
        assert (await command(server, "CP1", "Reset", {"type": "Soft"}))[0] == 200
        assert (await net.refused("CP2", protocols=None))[0] == 400
        values = await off_loop(scrape, server)
        assert metric(values, "ocpp_charge_points_connected", protocol=V16) == 1
        assert metric(values, "ocpp_charge_points_connected", protocol=V201) == 2
        uplink = {"direction": "uplink", "action": "BootNotification"}
        downlink = {"direction": "downlink", "action": "Reset"}
        assert metric(values, "ocpp_calls_total", **uplink, result="result") == 1
        assert metric(values, "ocpp_calls_total", **downlink, result="result") == 1
        assert metric(values, "ocpp_call_duration_seconds_count", **uplink) == 1
        assert metric(values, "ocpp_call_duration_seconds_count", **downlink) == 1
        assert metric(values, "ocpp_call_duration_seconds_bucket", **downlink, le="+Inf") == 1
        assert metric(values, "ocpp_commands_pending") == 0
        assert metric(values, "ocpp_event_sink_dropped_total") == 0
        assert metric(values, "ocpp_upgrades_refused_total", reason="no_supported_subprotocol") == 1
        assert metric(values, "ocpp_upgrades_refused_total", reason="wrong_password") == 0

    drive(server, body)


def test_events_file_gets_connect_boot_and_disconnect(start_server, tmp_path):
    path = tmp_path / "events.ndjson"
    server = gateway(start_server, OCPP_EVENTS_FILE=path)

    async def body(net):
        cp = await net.station("CP1")
        await cp.boot(charge_point_serial_number="SN-1")
        await cp.ws.close()

        def events():
            lines = path.read_text().splitlines() if path.exists() else []
            got = [json.loads(line) for line in lines]
            return got if got and got[-1]["message_type"] == "disconnected" else None

        got = await wait_until(events, "the disconnected event")
        assert {e["charge_point_id"] for e in got} == {"CP1"} and {e["protocol"] for e in got} == {V16}
        assert [(e["message_type"], e["direction"]) for e in got] == [
            ("connected", None),
            ("call", "uplink"),
            ("call_result", "downlink"),
            ("disconnected", None),
        ]
        boot, answer = got[1], got[2]
        assert boot["action"] == "BootNotification"
        assert boot["payload"] == {
            "chargePointModel": "Model-T",
            "chargePointVendor": "Acme",
            "chargePointSerialNumber": "SN-1",
        }
        assert answer["message_id"] == boot["message_id"] and answer["payload"]["status"] == "Accepted"
        assert all(abs(age(e["received_at"])) < 30 for e in got)

    drive(server, body)


def test_idle_timeout_closes_silent_charge_points_with_4001(start_server):
    server = gateway(start_server, OCPP_IDLE_TIMEOUT="1s")

    async def body(net):
        silent = await net.raw("SILENT")
        busy = await net.raw("BUSY")
        started = time.monotonic()

        async def silent_closes():
            return await closed_with(silent), time.monotonic() - started

        closing = asyncio.create_task(silent_closes())
        for n in range(8):  # a message every 0.25 s for 2 s keeps BUSY open
            await heartbeat(busy, f"hb{n}")
            await asyncio.sleep(0.25)
        code, after = await closing
        assert code == 4001 and 0.9 <= after < 2.5, (code, after)
        await heartbeat(busy, "still")

    drive(server, body)


# --- hostile charge points: bounded work and memory --------------------------------------


def hostile_meter_values(message_id, items=500_000):
    """The security review's MeterValues: just under 1 MiB, half a million `0`s where
    sampled-value objects belong (a few KB once compressed)."""
    head = f'[2,"{message_id}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":['
    return head + ",".join(["0"] * items) + "]}]}]"


def test_a_flood_of_hostile_meter_values_leaves_the_shard_responsive(start_server):
    server = gateway(start_server, RINGGATE_SHARDS=1, OCPP_COMPRESSION="shared")
    frames = 12
    # An echo round trip on the flooded shard; before the fix, one hostile frame took seconds.
    # Each frame still costs the shard its inflate and UTF-8 check (tens of ms in a debug
    # build), so the flood sends the next as soon as the last is answered.
    too_slow = 0.2

    async def body(net):
        attacker = await net.raw("EVIL", V16, compression="deflate")
        echo = await connect(server.url("/echo"), **ws_options())
        net.sockets.append(echo)

        async def flood():
            answers = []
            for n in range(frames):
                await attacker.send(hostile_meter_values(f"h{n}"))
                answers.append(await receive(attacker, 60))
            return answers

        flooding = asyncio.create_task(flood())
        round_trips = []
        while not flooding.done() and max(round_trips, default=0) < too_slow:
            started = time.monotonic()
            await echo.send("ping")
            try:
                await asyncio.wait_for(echo.recv(), 10)
            except TimeoutError:
                pass
            round_trips.append(time.monotonic() - started)
            await asyncio.sleep(0.005)
        assert max(round_trips) < too_slow, f"{len(round_trips)} round trips, the slowest {max(round_trips):.3f} s"
        answers = await asyncio.wait_for(flooding, 60)
        assert [a[:3] for a in answers] == [[4, f"h{n}", "OccurenceConstraintViolation"] for n in range(frames)]
        assert answers[0][3] == "the message holds more than 10000 items (array elements and object members)"
        await heartbeat(attacker)

    drive(server, body, deadline=120)


def test_a_huge_action_name_is_not_implemented_and_never_echoed(start_server):
    server = gateway(start_server)
    action = "A" * 500_000

    async def body(net):
        for protocol in (V16, V201):
            ws = await net.raw(f"CP-{protocol}", protocol)
            answer = await rpc(ws, [2, "m1", action, {}])
            size = len(json.dumps(answer))
            assert size < 300, f"a {size}-byte answer"
            assert answer[:3] == [4, "m1", "NotImplemented"] and answer[4] == {}, answer[:3]
            await heartbeat(ws)
        page = await ahttp(server, "GET", "/metrics")
        assert action[:100] not in page.text and len(page.text) < 100_000

    drive(server, body)


def rss_mib(server):
    """The server's resident memory."""
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    pytest.fail("no VmRSS line")


def test_a_stalled_event_sink_holds_at_most_OCPP_EVENT_BUFFER_BYTES(start_server, tmp_path):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    # Opened and never read: once the pipe's 64 KiB are full, the sink's writes block for good.
    stalled = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    budget_mib, frames = 16, 120
    try:
        server = gateway(
            start_server,
            OCPP_EVENTS_FILE=fifo,
            OCPP_EVENT_BUFFER_BYTES=f"{budget_mib}MiB",
            OCPP_COMPRESSION="shared",
        )

        async def body(net):
            ws = await net.raw("CP1", V16, compression="deflate")
            await heartbeat(ws)
            before = rss_mib(server)
            data = "x" * 1_000_000  # a few KB once compressed
            for n in range(frames):
                answer = await rpc(ws, [2, f"d{n}", "DataTransfer", {"vendorId": "com.example", "data": data}])
                assert answer == [3, f"d{n}", {"status": "Accepted"}], answer[:3]
            grown = rss_mib(server) - before
            assert grown < budget_mib + 32, f"RSS grew {grown:.0f} MiB for {frames} events of 1 MB"
            values = await off_loop(scrape, server)
            # The CALL events past the budget, and the answers' events behind them.
            assert metric(values, "ocpp_event_sink_dropped_total") >= frames - budget_mib

        drive(server, body, deadline=120)
    finally:
        os.close(stalled)


# --- the charge-point table: eviction and deletion ---------------------------------------


def known_ids(server):
    """{id: connected} of every charge point the gateway remembers."""
    page = http(server, "GET", "/ocpp/charge-points?limit=1000").json()
    return {cp["id"]: cp["connected"] for cp in page["charge_points"]}


def test_a_full_table_evicts_disconnected_charge_points_never_booted_first(start_server):
    server = gateway(start_server, OCPP_MAX_CHARGE_POINTS="3")

    async def body(net):
        booted = await net.station("BOOTED")
        await booted.boot()
        await booted.ws.close()
        await wait_until(lambda: known_ids(server) == {"BOOTED": False}, "BOOTED disconnected")
        for cp_id in ("IDLE1", "IDLE2"):  # connect and leave without a boot, after BOOTED left
            await (await net.open(cp_id)).close()
            await wait_until(lambda: known_ids(server).get(cp_id) is False, f"{cp_id} disconnected")
        # Full of disconnected charge points: each newcomer evicts one, those that never booted
        # first, the one that left first first.
        for newcomer, evicted in [("NEW1", "IDLE1"), ("NEW2", "IDLE2"), ("NEW3", "BOOTED")]:
            await heartbeat(await net.raw(newcomer))
            known = await off_loop(known_ids, server)
            assert newcomer in known and evicted not in known, (newcomer, known)
            r = await ahttp(server, "GET", f"/ocpp/charge-points/{evicted}")
            assert r.status_code == 404
        # Every one left is connected: nobody to evict.
        assert await net.refused("NEW4") == (503, "charge_point_table_full")
        assert await off_loop(known_ids, server) == {"NEW1": True, "NEW2": True, "NEW3": True}

    drive(server, body)


def test_admin_delete_forgets_a_charge_point_and_force_closes_a_connected_one(start_server):
    server = gateway(start_server)

    async def body(net):
        gone = await net.station("GONE")
        await gone.boot()
        await gone.ws.close()
        await wait_until(lambda: known_ids(server).get("GONE") is False, "GONE disconnected")
        r = await ahttp(server, "DELETE", "/ocpp/charge-points/GONE")
        assert (r.status_code, r.content) == (204, b"")
        assert (await ahttp(server, "GET", "/ocpp/charge-points/GONE")).status_code == 404
        r = await ahttp(server, "DELETE", "/ocpp/charge-points/GONE")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_charge_point")

        live = await net.raw("LIVE")
        r = await ahttp(server, "DELETE", "/ocpp/charge-points/LIVE")
        assert (r.status_code, r.json()["error"]["code"]) == (409, "connected")
        await heartbeat(live)  # untouched
        assert (await off_loop(station_facts, server, "LIVE"))["connected"] is True
        r = await ahttp(server, "DELETE", "/ocpp/charge-points/LIVE?force=true")
        assert r.status_code == 204
        assert await closed_with(live) == 4002
        assert (await ahttp(server, "GET", "/ocpp/charge-points/LIVE")).status_code == 404
        status, doc = await command(server, "LIVE", "Reset", {"type": "Soft"})
        assert (status, doc["error"]["code"]) == (404, "not_connected")
        values = await off_loop(scrape, server)
        assert metric(values, "ocpp_charge_points_known") == 0
        assert metric(values, "ocpp_charge_points_connected", protocol=V16) == 0

    drive(server, body)
