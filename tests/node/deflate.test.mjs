// permessage-deflate (RFC 7692) on /echo seen by the `ws` package's client,
// with threshold 0 so that every message, however small, goes out compressed.
// For each case (shared and dedicated mode, with and without window limits
// offered, and compression off): the Sec-WebSocket-Extensions answer, then
// 100 messages of mixed kinds and sizes (up to 100 KiB) sent back to back and
// echoed in order (context takeover must stay in sync in dedicated mode).
// Each case spawns target/debug/ringgate (or $RINGGATE_BIN) on an ephemeral
// loopback port. Run: node --test tests/node/deflate.test.mjs

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

import WebSocket from "ws";

import { startServer, TIMEOUT, within } from "./server.mjs";

const TEST_TIMEOUT = 60_000;

/** {param: value or true} of the one permessage-deflate in an answer; null without one. */
function answeredParams(header) {
  if (header === undefined) return null;
  const [name, ...params] = header.split(";").map((s) => s.trim());
  assert.equal(name, "permessage-deflate", `unexpected answer ${header}`);
  const out = {};
  for (const p of params) {
    const [key, value] = p.split("=").map((s) => s.trim());
    assert.ok(!(key in out), `${key} twice in ${header}`);
    out[key] = value === undefined ? true : value.replace(/^"|"$/g, "");
  }
  return out;
}

/** Opens /echo with `options`; resolves with the socket and the answer's header. */
async function open(server, perMessageDeflate) {
  const ws = new WebSocket(server.url("/echo"), { handshakeTimeout: TIMEOUT, perMessageDeflate });
  let header;
  ws.once("upgrade", (res) => {
    header = res.headers["sec-websocket-extensions"];
  });
  await within(
    new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    }),
    TIMEOUT + 1000,
    "the upgrade",
  );
  return { ws, header };
}

function close(ws) {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  const closed = new Promise((resolve) => ws.once("close", resolve));
  ws.close();
  return within(closed, TIMEOUT, "the close handshake").catch(() => ws.terminate());
}

/** Exactly `size` characters of compressible, JSON-like text. */
function jsonText(size, seed) {
  let out = "[";
  for (let i = 0; out.length < size; i++) {
    out += JSON.stringify({ id: seed * 1000 + i, user: `guest-${(seed + i) % 97}`, room: "general", content: "lorem ipsum dolor sit amet" }) + ",";
  }
  return out.slice(0, size);
}

/** 100 messages: text, random binary and repetitive binary, 0 bytes to 100 KiB. */
function mixedMessages() {
  const sizes = [0, 1, 10, 127, 128, 1000, 4096, 100 * 1024];
  const msgs = [];
  for (let i = 0; i < 100; i++) {
    const size = sizes[i % sizes.length];
    switch (i % 3) {
      case 0:
        msgs.push(jsonText(size, i));
        break;
      case 1:
        msgs.push(randomBytes(size));
        break;
      default: {
        const block = randomBytes(Math.min(size, 3000));
        msgs.push(Buffer.concat(Array(Math.ceil(size / Math.max(block.length, 1))).fill(block)).subarray(0, size));
      }
    }
  }
  return msgs;
}

/** Sends every message back to back; resolves with the echoes in order. */
function echoAll(ws, msgs) {
  const got = [];
  const done = new Promise((resolve, reject) => {
    ws.on("message", (data, isBinary) => {
      got.push(isBinary ? Buffer.from(data) : data.toString());
      if (got.length === msgs.length) resolve(got);
    });
    ws.once("close", (code) => reject(new Error(`closed with ${code} after ${got.length} echoes`)));
  });
  for (const m of msgs) ws.send(m);
  return within(done, 30_000, `${msgs.length} echoes (${got.length} so far)`);
}

const SHARED = { WS_ENABLE_COMPRESSION: "true" };
const DEDICATED = { WS_ENABLE_COMPRESSION: "true", WS_COMPRESSION_MODE: "dedicated" };

// `want`: the answer's parameters (null: no extension). Dedicated mode may add
// server_max_window_bits unasked (at most `window`).
const CASES = [
  { name: "shared", env: SHARED, offer: {}, want: { server_no_context_takeover: true, client_no_context_takeover: true } },
  {
    name: "shared, server_max_window_bits=10 offered",
    env: SHARED,
    offer: { serverMaxWindowBits: 10 },
    want: { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: "10" },
  },
  { name: "dedicated", env: DEDICATED, window: 15, offer: {}, want: { client_max_window_bits: "15" } },
  {
    name: "dedicated with window 11",
    env: { ...DEDICATED, WS_COMPRESSION_WINDOW_BITS: "11" },
    window: 11,
    offer: {},
    want: { client_max_window_bits: "11" },
  },
  {
    name: "dedicated with window 11, client offers 12 and 13",
    env: { ...DEDICATED, WS_COMPRESSION_WINDOW_BITS: "11" },
    window: 11,
    offer: { serverMaxWindowBits: 12, clientMaxWindowBits: 13 },
    want: { server_max_window_bits: "11", client_max_window_bits: "11" },
  },
  { name: "off", env: {}, offer: {}, want: null },
];

for (const c of CASES) {
  describe(`permessage-deflate: ${c.name}`, () => {
    let server;
    before(async () => {
      server = await startServer(c.env);
    });
    after(async () => {
      await server?.stop();
    });

    test("negotiates, then echoes 100 mixed messages in order", { timeout: TEST_TIMEOUT }, async () => {
      const { ws, header } = await open(server, { threshold: 0, ...c.offer });
      try {
        const got = answeredParams(header);
        if (got && c.window && !("server_max_window_bits" in c.want) && "server_max_window_bits" in got) {
          assert.ok(Number(got.server_max_window_bits) <= c.window, header);
          delete got.server_max_window_bits;
        }
        assert.deepEqual(got, c.want, `answer: ${header}`);
        assert.equal(ws.extensions, c.want ? "permessage-deflate" : "");
        const msgs = mixedMessages();
        const echoes = await echoAll(ws, msgs);
        for (let i = 0; i < msgs.length; i++) {
          assert.deepEqual(echoes[i], msgs[i], `message ${i} (${msgs[i].length} bytes)`);
        }
      } finally {
        await close(ws);
      }
    });
  });
}
