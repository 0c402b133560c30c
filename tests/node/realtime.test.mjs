// The realtime service on /ws seen by Node clients: the `ws` package and
// tokens made by `jsonwebtoken`. Each suite spawns target/debug/ringgate (or
// $RINGGATE_BIN) on an ephemeral loopback port and kills it in `after`.
// Run: node --test tests/node/*.test.mjs   (scripts/test.sh, step node)

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import jwt from "jsonwebtoken";
import WebSocket from "ws";

import { startServer, TIMEOUT, within } from "./server.mjs";

const SECRET = "ringgate-node-test-secret-0123456789abcdef";
const TEST_TIMEOUT = 30_000;

function token(sub, claims = {}, secret = SECRET) {
  const username = sub[0].toUpperCase() + sub.slice(1);
  return jwt.sign({ sub, username, ...claims }, secret, { algorithm: "HS256", expiresIn: "1h" });
}

/** One realtime connection: JSON messages queued as they arrive. */
class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    ws.on("message", (data, isBinary) => {
      const msg = isBinary ? { binary: data } : JSON.parse(data.toString());
      const waiter = this.waiters.shift();
      if (waiter) waiter(msg);
      else this.queue.push(msg);
    });
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  next(ms = TIMEOUT) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    let waiter;
    const got = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return within(got, ms, "a message").catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw e;
    });
  }

  async expect(type) {
    const msg = await this.next();
    assert.equal(msg.message_type, type, `expected ${type}, got ${JSON.stringify(msg)}`);
    return msg;
  }

  /** Messages up to and including the first that `pred` accepts. */
  async until(pred) {
    const got = [];
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      const msg = await this.next(Math.max(1, deadline - Date.now()));
      got.push(msg);
      if (pred(msg)) return got;
    }
  }

  /** What arrives within `ms` (asserted empty by callers). */
  async quiet(ms = 300) {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.splice(0);
  }

  close() {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    const closed = new Promise((resolve) => this.ws.once("close", resolve));
    this.ws.close();
    return within(closed, TIMEOUT, "the close handshake").catch(() => this.ws.terminate());
  }
}

/** Opens a connection and reads its welcome. */
async function open(url, protocols, options) {
  const ws = new WebSocket(url, protocols, { handshakeTimeout: TIMEOUT, ...options });
  const client = new Client(ws);
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  await within(opened, TIMEOUT + 1000, `open ${url}`);
  client.welcome = await client.expect("welcome");
  return client;
}

/** The status and JSON body of an upgrade the server refuses. */
function refused(url, protocols) {
  const ws = new WebSocket(url, protocols, { handshakeTimeout: TIMEOUT });
  const answer = new Promise((resolve, reject) => {
    ws.once("open", () => reject(new Error(`${url} was accepted`)));
    ws.once("error", reject);
    ws.once("unexpected-response", (req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => {
        resolve({ statusCode: res.statusCode, body: JSON.parse(body) });
        req.destroy();
      });
    });
  });
  return within(answer, TIMEOUT + 1000, `the refusal of ${url}`);
}

/** Runs `body(clients)` and closes every client it opened. */
async function withClients(body) {
  const clients = [];
  try {
    await body(clients);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

describe("realtime with JWT_SECRET", () => {
  let server;
  before(async () => {
    server = await startServer({ JWT_SECRET: SECRET, WS_DEFAULT_ROOMS: "general,lobby" });
  });
  after(async () => {
    await server?.stop();
  });

  test("welcome carries the token's user", { timeout: TEST_TIMEOUT }, () =>
    withClients(async (clients) => {
      const alice = await open(server.url(`/ws?token=${token("alice")}`));
      clients.push(alice);
      assert.deepEqual(alice.welcome.data, { user_id: "alice", username: "Alice", rooms: [] });
      assert.equal(typeof alice.welcome.id, "string");
      assert.ok(!Number.isNaN(Date.parse(alice.welcome.timestamp)));
      alice.send({ message_type: "ping", data: { n: 7 } });
      assert.deepEqual((await alice.expect("pong")).data, { n: 7 });
    }));

  test("join, then a room message reaches both members", { timeout: TEST_TIMEOUT }, () =>
    withClients(async (clients) => {
      const alice = await open(server.url(`/ws?token=${token("alice")}`));
      const bob = await open(server.url("/ws"), undefined, {
        headers: { Authorization: `Bearer ${token("bob")}` },
      });
      clients.push(alice, bob);
      alice.send({ message_type: "join", room: "lobby" });
      assert.deepEqual((await alice.expect("room_joined")).data, { room: "lobby", name: "Lobby" });
      bob.send({ message_type: "join", room: "lobby" });
      await bob.until((m) => m.message_type === "room_joined");
      const joined = await alice.expect("user_joined");
      assert.deepEqual(joined.data, { user_id: "bob", username: "Bob", room: "lobby" });

      bob.send({ message_type: "room_message", room: "lobby", data: { text: "hi" } });
      for (const c of [alice, bob]) {
        const got = await c.until((m) => m.message_type === "room_message");
        const msg = got.at(-1);
        assert.deepEqual(msg.data, { text: "hi" });
        assert.equal(msg.from_user_id, "bob");
        assert.equal(msg.room, "lobby");
      }
      assert.deepEqual(
        (await alice.quiet()).filter((m) => m.message_type !== "user_joined"),
        [],
      );
    }));

  test("a private message reaches its addressee only", { timeout: TEST_TIMEOUT }, () =>
    withClients(async (clients) => {
      const alice = await open(server.url(`/ws?token=${token("alice")}`));
      const bob = await open(server.url(`/ws?token=${token("bob")}`));
      const carol = await open(server.url(`/ws?token=${token("carol")}`));
      clients.push(alice, bob, carol);
      alice.send({ message_type: "private_message", to_user_id: "bob", data: { text: "psst" } });
      const msg = await bob.expect("private_message");
      assert.deepEqual(msg.data, { text: "psst" });
      assert.equal(msg.from_user_id, "alice");
      assert.equal(msg.to_user_id, "bob");
      assert.deepEqual(await carol.quiet(), []);
      assert.deepEqual(await alice.quiet(), []);
      alice.send({ message_type: "private_message", to_user_id: "nobody", data: {} });
      assert.equal((await alice.expect("error")).data.code, "user_offline");
    }));

  test("a token signed with another secret is refused with 401", { timeout: TEST_TIMEOUT }, async () => {
    const bad = token("mallory", {}, "not-the-server-secret-0123456789abcdef");
    const { statusCode, body } = await refused(server.url(`/ws?token=${bad}`));
    assert.equal(statusCode, 401);
    assert.equal(body.error.code, "bad_signature");
    const missing = await refused(server.url("/ws"));
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.body.error.code, "missing_token");
  });

  test("the token may come in the access_token subprotocol", { timeout: TEST_TIMEOUT }, () =>
    withClients(async (clients) => {
      const dave = await open(server.url("/ws"), ["access_token", token("dave")]);
      clients.push(dave);
      assert.equal(dave.ws.protocol, "access_token");
      assert.deepEqual(dave.welcome.data, { user_id: "dave", username: "Dave", rooms: [] });
    }));
});

describe("realtime without JWT_SECRET", () => {
  let server;
  before(async () => {
    server = await startServer({ JWT_SECRET: "" });
  });
  after(async () => {
    await server?.stop();
  });

  test("users are anonymous, each with its own id", { timeout: TEST_TIMEOUT }, () =>
    withClients(async (clients) => {
      const a = await open(server.url("/ws"));
      const b = await open(server.url("/ws/connect"));
      clients.push(a, b);
      for (const c of [a, b]) {
        assert.match(c.welcome.data.user_id, /^anon-/);
        assert.match(c.welcome.data.username, /^guest-/);
      }
      assert.notEqual(a.welcome.data.user_id, b.welcome.data.user_id);
      assert.deepEqual(b.welcome.data.rooms, ["general"]);
      a.send({ message_type: "private_message", to_user_id: b.welcome.data.user_id, data: { x: 1 } });
      const msg = await b.until((m) => m.message_type === "private_message");
      assert.equal(msg.at(-1).from_user_id, a.welcome.data.user_id);
      assert.match(server.stderr(), /JWT_SECRET is not set/);
    }));
});
