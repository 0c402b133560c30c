// The OCPP gateway on /ocpp/{id} seen by Node's `ocpp-rpc` in strict mode: every CALL
// the client sends, every CALLRESULT the embedded central system answers and every
// downlink command the admin API sends is checked against the OCPP JSON schemas of the
// subprotocol (1.6 and 2.0.1); a violation fails the call. Basic auth (security profile
// 1) with ocpp-rpc's own `password` option too.
// Run: node --test tests/node/*.test.mjs   (scripts/test.sh, step node)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import rpc from "ocpp-rpc";

import { startServer, TIMEOUT, within } from "./server.mjs";

const { RPCClient } = rpc;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.RINGGATE_BIN || path.join(ROOT, "target", "debug", "ringgate");
const TEST_TIMEOUT = 30_000;
const PASSWORD = "node-ocpp-rpc-password-0123";

/** A strict ocpp-rpc charge point, connected; closed by the caller. */
async function chargePoint(server, identity, protocol, extra = {}) {
  const client = new RPCClient({
    endpoint: server.url("/ocpp"),
    identity,
    protocols: [protocol],
    strictMode: true,
    reconnect: false,
    ...extra,
  });
  await within(client.connect(), TIMEOUT, `${identity} to connect`);
  assert.equal(client.protocol, protocol);
  return client;
}

/** POST /ocpp/{id}/commands on the admin API (loopback, no token). */
async function command(server, id, action, payload) {
  const response = await fetch(`http://${server.host}:${server.port}/ocpp/${id}/commands`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ action, payload, timeout_ms: 10_000 }),
  });
  return { status: response.status, body: await response.json() };
}

/** What each version's charge point sends after its boot, and a command it answers. */
const VERSIONS = {
  "ocpp1.6": {
    boot: { chargePointVendor: "ringgate-tests", chargePointModel: "ocpp-rpc" },
    status: { connectorId: 1, errorCode: "NoError", status: "Available" },
    trigger: { requestedMessage: "Heartbeat" },
  },
  "ocpp2.0.1": {
    boot: { reason: "PowerUp", chargingStation: { model: "ocpp-rpc", vendorName: "ringgate-tests" } },
    status: {
      timestamp: new Date().toISOString(),
      connectorStatus: "Available",
      evseId: 1,
      connectorId: 1,
    },
    trigger: { requestedMessage: "Heartbeat" },
  },
};

describe("ocpp-rpc charge points in strict mode", { timeout: TEST_TIMEOUT * 4 }, () => {
  let server;
  before(async () => {
    server = await startServer({});
  });
  after(async () => {
    await server?.stop();
  });

  for (const [protocol, messages] of Object.entries(VERSIONS)) {
    test(`${protocol}: boot, status, heartbeat and a downlink command are all schema-valid`, { timeout: TEST_TIMEOUT }, async () => {
      const id = `node-rpc-${protocol.replace(/\W/g, "")}`;
      const client = await chargePoint(server, id, protocol);
      const triggered = [];
      client.handle("TriggerMessage", ({ params }) => {
        triggered.push(params);
        return { status: "Accepted" };
      });
      try {
        const boot = await client.call("BootNotification", messages.boot);
        assert.equal(boot.status, "Accepted");
        assert.ok(boot.interval > 0, JSON.stringify(boot));
        await client.call("StatusNotification", messages.status);
        const beat = await client.call("Heartbeat", {});
        assert.ok(!Number.isNaN(Date.parse(beat.currentTime)), JSON.stringify(beat));

        const answer = await command(server, id, "TriggerMessage", messages.trigger);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.equal(answer.body.status, "accepted");
        assert.deepEqual(answer.body.result, { status: "Accepted" });
        assert.deepEqual(triggered, [messages.trigger]);
      } finally {
        await client.close({ force: true });
      }
    });
  }

  test("a CALL the schema forbids is refused by the client before it leaves", { timeout: TEST_TIMEOUT }, async () => {
    // The strict client is the judge here: if it let this through, the checks above
    // would prove nothing.
    const client = await chargePoint(server, "node-rpc-strict", "ocpp1.6");
    try {
      await assert.rejects(client.call("BootNotification", { chargePointVendor: "x" }));
    } finally {
      await client.close({ force: true });
    }
  });
});

describe("ocpp-rpc with Basic auth (security profile 1)", { timeout: TEST_TIMEOUT * 2 }, () => {
  let server;
  before(async () => {
    const hashed = spawnSync(BIN, ["--hash-password"], { input: `${PASSWORD}\n`, encoding: "utf8" });
    assert.equal(hashed.status, 0, hashed.stderr);
    server = await startServer({ OCPP_PASSWORDS: `node-rpc-auth=${hashed.stdout.trim()}` });
  });
  after(async () => {
    await server?.stop();
  });

  test("the right password boots; a wrong one is refused at the handshake", { timeout: TEST_TIMEOUT }, async () => {
    const client = await chargePoint(server, "node-rpc-auth", "ocpp1.6", { password: PASSWORD });
    try {
      const boot = await client.call("BootNotification", VERSIONS["ocpp1.6"].boot);
      assert.equal(boot.status, "Accepted");
    } finally {
      await client.close({ force: true });
    }
    const intruder = new RPCClient({
      endpoint: server.url("/ocpp"),
      identity: "node-rpc-auth",
      protocols: ["ocpp1.6"],
      strictMode: true,
      reconnect: false,
      password: "not-the-password-at-all",
    });
    await assert.rejects(within(intruder.connect(), TIMEOUT, "the intruder's connect"), /Unauthorized/);
  });
});
