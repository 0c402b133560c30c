// What the Node suites share: spawning target/debug/ringgate (or
// $RINGGATE_BIN) on an ephemeral loopback port, and waiting with a deadline.

import { spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.RINGGATE_BIN || path.join(ROOT, "target", "debug", "ringgate");
export const TIMEOUT = 10_000; // ms, any single wait

/** Rejects after `ms` with `what` unless `promise` settles first. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts ringgate with `env` on top of ours; resolves once it prints its listening line. */
export async function startServer(env) {
  const proc = spawn(BIN, ["--host", "127.0.0.1", "--port", "0"], {
    env: { ...process.env, RINGGATE_SHARDS: "2", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  const listening = new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: proc.stdout });
    lines.on("line", (line) => {
      const m = /^listening on (\S+):(\d+)\s*$/.exec(line);
      if (m) resolve({ host: m[1], port: Number(m[2]) });
    });
    proc.once("error", reject);
    exited.then((code) => reject(new Error(`ringgate exited (${code}) before listening:\n${stderr}`)));
  });
  let address;
  try {
    address = await within(listening, 30_000, `ringgate (${BIN}) to listen`);
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }
  return {
    ...address,
    url: (p) => `ws://${address.host}:${address.port}${p}`,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await within(exited, TIMEOUT, "ringgate to exit");
    },
  };
}
