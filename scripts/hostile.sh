#!/usr/bin/env bash
# scripts/hostile.sh - the hostile run of issue 19: one ringgate (2 shards)
# under every `ringgate-load attack` stream at once while 1,000 echo clients
# time their round trips, 100 charge points answer downlink commands sent
# through the admin API, /metrics is scraped and parsed every 5 s and the
# server's RSS is sampled every 2 s, for --duration. Then one summary, and a
# verdict on whether the server stayed fast, correct and flat.
#
# Usage: scripts/hostile.sh [--duration D] [--no-build] [--keep]
#   --duration D   how long the run lasts (default 5m; `30s`, `5m`, `1h`, or
#                  plain seconds; at least 20s)
#   --no-build     use the binaries already in target/release
#   --keep         keep the temporary directory (server log, the tools'
#                  JSON reports, RSS samples, scrape results, the first
#                  scrape that failed its checks) and print where it is
#
# The server: target/release/ringgate on an ephemeral loopback port with
#   RINGGATE_SHARDS=2, a random ADMIN_TOKEN (the admin API and /metrics want
#   it), OCPP_COMPRESSION=shared (hostile frames travel compressed),
#   OCPP_PASSWORDS for the one id `hostile-pw` (a random password, hashed
#   with `ringgate --hash-password`), OCPP_EVENTS_FILE on a FIFO that this
#   script holds open and never reads (a stuck event sink), and
#   OCPP_MAX_CHARGE_POINTS=2000. Anything else comes from the environment
#   (RINGGATE_IO=epoll selects the fallback driver).
# Together, for D (the attack starts 5 s after the others, once they are up):
#   ringgate-load attack   schema 2/s, labels 2/s, events 0.2/s (1 MiB each),
#                          registry 100 new ids/s, passwords 1000/s
#   ringgate-load sustained  1,000 connections to /echo, one message each a
#                          second, RTT percentiles per 10 s interval
#   ringgate-load ocpp     100 charge points `hostile-cp-N`, up for D, with
#                          --commands 10 (per second, over all of them)
#
# Verdict: exit 0 only when every check holds.
#   echo      every 10 s interval's p99 round trip under 10 ms, and every
#             echo back (no failure counted)
#   commands  every charge point booted and stayed up, and every command
#             sent was answered (some were sent)
#   rss       flat: the median of the last fifth of the samples is at most
#             10 % (+ 4 MiB) above the median of the second fifth; the first
#             fifth is warm-up. For 5 minutes: the last minute against the
#             second minute.
#   scrapes   every scrape answered 200 within 20 s, parsed as OpenMetrics
#             (prometheus_client's parser, .venv), held no family the attack
#             injected, and stayed under 4 MiB
#   registry  every new charge point admitted (101): none refused with 503
#             (a table full of ids that connected once and left) or left
#             unanswered
#   server    alive at the end
# Exit status 1 when a check failed; 2 for bad flags, a failed build, a
# missing .venv (make it with scripts/test.sh --only venv), or a server that
# did not start. Everything runs on 127.0.0.1, every process is bounded in
# time, and the script ends the processes it started on exit or Ctrl-C.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

DURATION=5m BUILD=1 KEEP=0
die() { echo "hostile.sh: $*" >&2; exit 2; }
while (($#)); do
    case $1 in
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

# Seconds in D: `90`, `90s`, `5m`, `1h`.
seconds() {
    local d=$1
    [[ $d =~ ^([0-9]+)(s|m|h)?$ ]] || return 1
    local n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
        m) echo $((n * 60)) ;;
        h) echo $((n * 3600)) ;;
        *) echo "$n" ;;
    esac
}
SECS=$(seconds "$DURATION") || die "--duration $DURATION: use e.g. 30s, 5m or 1h"
((SECS >= 20)) || die "--duration must be at least 20s"
ATTACK_DELAY=5
ATTACK_SECS=$((SECS - ATTACK_DELAY))
# Each tool stops by itself; this caps what their drains and closes may add.
TOOL_TIMEOUT=$((SECS + 90))
PY=.venv/bin/python
[[ -x $PY ]] && $PY -c 'import prometheus_client' 2>/dev/null \
    || die "no .venv with prometheus_client: run scripts/test.sh --only venv"

if ((BUILD)); then
    cargo build --release -p ringgate -p ringgate-load || exit 2
fi
SERVER_BIN=target/release/ringgate LOAD=target/release/ringgate-load
[[ -x $SERVER_BIN && -x $LOAD ]] || die "no release binaries (drop --no-build)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hostile.XXXXXX") || exit 2
PIDS=() SERVER_PID="" FIFO_FD=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    # With its only reader gone, the server's blocked event writer gets EPIPE.
    [[ -n $FIFO_FD ]] && exec {FIFO_FD}<&-
    if [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if ((KEEP)); then echo "hostile.sh: kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
PASSWORD=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
HASH=$(printf '%s\n' "$PASSWORD" | "$SERVER_BIN" --hash-password) || die "ringgate --hash-password failed"
mkfifo "$TMP/events.fifo" || exit 2
# Held open read-write and never read: the server's open() does not block,
# and its writes stop once the pipe's buffer is full.
exec {FIFO_FD}<>"$TMP/events.fifo"

env RINGGATE_SHARDS=2 ADMIN_TOKEN="$TOKEN" OCPP_COMPRESSION=shared \
    OCPP_PASSWORDS="hostile-pw=$HASH" OCPP_EVENTS_FILE="$TMP/events.fifo" \
    OCPP_MAX_CHARGE_POINTS=2000 \
    "$SERVER_BIN" --host 127.0.0.1 --port 0 >"$TMP/server.out" 2>"$TMP/server.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 100); do
    ADDR=$(grep -m1 -oE '127\.0\.0\.1:[0-9]+' "$TMP/server.out" 2>/dev/null) && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
[[ -n $ADDR ]] || { cat "$TMP/server.log" >&2; die "the server did not start"; }
echo "hostile.sh: ringgate on $ADDR (2 shards), pid $SERVER_PID; ${SECS}s, files in $TMP"

"$LOAD" sustained --url "ws://$ADDR/echo" -c 1000 --max-concurrent 200 \
    --duration "${SECS}s" --message-interval 1000 --report-interval 10s \
    --timeout "${TOOL_TIMEOUT}s" --json >"$TMP/echo.json" 2>"$TMP/echo.err" &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
"$LOAD" ocpp --url "ws://$ADDR/ocpp" -c 100 --id-prefix hostile-cp- --status \
    --heartbeats 0 --hold "${SECS}s" --commands 10 --admin-token "$TOKEN" \
    --timeout "${TOOL_TIMEOUT}s" --json >"$TMP/ocpp.json" 2>"$TMP/ocpp.err" &
OCPP_PID=$!
PIDS+=("$OCPP_PID")

# The server's RSS every 2 s until the end: seconds since the start, KiB.
START=$EPOCHREALTIME
(
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null)
        t=$(awk -v a="$EPOCHREALTIME" -v b="$START" 'BEGIN { printf "%.1f", a - b }')
        [[ -n $rss ]] && echo "$t $rss"
        awk -v t="$t" -v s="$SECS" 'BEGIN { exit !(t >= s) }' && break
        sleep 2
    done
) >"$TMP/rss.tsv" &
PIDS+=("$!")

# /metrics every 5 s until the end: status, size, time, and the checks.
"$PY" - "$ADDR" "$TOKEN" "$SECS" "$TMP" >"$TMP/scrapes.ndjson" 2>"$TMP/scrapes.err" <<'EOF' &
import json, sys, time, urllib.request, urllib.error
from prometheus_client.openmetrics.parser import text_string_to_metric_families

addr, token, secs, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
INJECTED = "ringgate_load_injected"   # the family the labels stream writes
MAX_READ = 64 << 20
start = time.monotonic()
kept_failure = False
while time.monotonic() - start < secs:
    tick = time.monotonic()
    row = {"t_s": round(tick - start, 1)}
    req = urllib.request.Request(f"http://{addr}/metrics",
                                 headers={"Authorization": f"Bearer {token}"})
    body = b""
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            row["status"] = resp.status
            # At most 64 MiB is read: a blown-up scrape is bad at any size.
            body = resp.read(MAX_READ + 1)
            row["truncated"] = len(body) > MAX_READ
    except urllib.error.HTTPError as e:
        row["status"] = e.code
    except Exception as e:   # timeout, reset: no answer
        row["status"] = None
        row["error"] = f"{type(e).__name__}: {e}"[:200]
    row["seconds"] = round(time.monotonic() - tick, 3)
    row["bytes"] = len(body)
    if row["status"] == 200 and row["truncated"]:
        row["parsed"] = False
        row["error"] = "over 64 MiB: not parsed"
    elif row["status"] == 200:
        try:
            names = {f.name for f in text_string_to_metric_families(body.decode())}
            row["parsed"] = True
            row["families"] = len(names)
            row["injected"] = INJECTED in names
        except Exception as e:
            row["parsed"] = False
            row["error"] = f"{type(e).__name__}: {e}"[:200]
    if row["status"] == 200:
        bad = not row["parsed"] or row.get("injected") or row["bytes"] > 4 << 20
        if bad and not kept_failure:
            open(f"{tmp}/scrape-failed.txt", "wb").write(body)
            kept_failure = True
    print(json.dumps(row), flush=True)
    time.sleep(max(0.0, 5 - (time.monotonic() - tick)))
EOF
SCRAPER_PID=$!
PIDS+=("$SCRAPER_PID")

sleep "$ATTACK_DELAY"
"$LOAD" attack --url "ws://$ADDR/ocpp" --duration "${ATTACK_SECS}s" \
    --rate schema=2,labels=2,events=0.2,registry=100 --password-rate 1000 \
    --password-id hostile-pw --id-prefix hostile- --pid "$SERVER_PID" \
    --timeout "${TOOL_TIMEOUT}s" --json >"$TMP/attack.json" 2>"$TMP/attack.err" &
ATTACK_PID=$!
PIDS+=("$ATTACK_PID")

wait "$ECHO_PID" "$OCPP_PID" "$ATTACK_PID"
# The scraper ends at D, or with its last scrape (bounded by its timeout and
# the parse); give it a minute, then it is cut off.
for _ in $(seq 600); do kill -0 "$SCRAPER_PID" 2>/dev/null || break; sleep 0.1; done
ALIVE=0
kill -0 "$SERVER_PID" 2>/dev/null && ALIVE=1

"$PY" - "$TMP" "$ALIVE" "$SECS" <<'EOF'
import json, statistics, sys

tmp, alive, secs = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])

def report(name):
    try:
        return json.load(open(f"{tmp}/{name}.json"))
    except (OSError, ValueError):
        return None

checks = []   # (name, passed, what was seen)
def check(name, passed, seen):
    checks.append((name, passed, seen))

echo = report("echo")
if echo is None:
    check("echo", False, "no report from ringgate-load sustained")
else:
    rows = [r for r in echo["timeline"] or [] if r["rtt_us"]]
    p99s = [r["rtt_us"]["p99"] / 1000 for r in rows]
    worst = max(p99s, default=float("nan"))
    lost = echo["messages_sent"] - echo["messages"]
    per = ", ".join(f"{p:.1f}" for p in p99s)
    check("echo", bool(rows) and worst < 10 and not echo["failures"],
          f"p99 per 10 s interval (ms): {per}; worst {worst:.1f}; {echo['messages']:,} of "
          f"{echo['messages_sent']:,} echoed ({lost:,} lost); failures {echo['failures'] or 'none'}")

ocpp = report("ocpp")
if ocpp is None or ocpp["ocpp"] is None:
    check("commands", False, "no report from ringgate-load ocpp")
else:
    o, c = ocpp["ocpp"], ocpp["ocpp"]["commands"]
    lat = c["latency_us"] or {}
    check("commands", o["passed"],
          f"{c['answered']:,} of {c['sent']:,} answered ({c['due']:,} due), failed "
          f"{c['failed'] or 'none'}, p50 {lat.get('p50', 0) / 1000:.1f} ms, p99 "
          f"{lat.get('p99', 0) / 1000:.1f} ms; charge points {o['boots_accepted']} booted, "
          f"{ocpp['up_at_end']} up at the end, failures {ocpp['failures'] or 'none'}")

samples = []
for line in open(f"{tmp}/rss.tsv"):
    t, kib = line.split()
    samples.append((float(t), int(kib)))
if len(samples) < 5:
    check("rss", False, f"{len(samples)} samples")
else:
    fifth = secs / 5
    ref = [k for t, k in samples if fifth <= t < 2 * fifth]
    tail = [k for t, k in samples if t >= 4 * fifth]
    rss = [k for _, k in samples]
    mib = lambda k: f"{k / 1024:.1f}"
    if not ref or not tail:
        check("rss", False, "no samples in the second or the last fifth")
    else:
        r, l = statistics.median(ref), statistics.median(tail)
        limit = r * 1.10 + 4096
        check("rss", l <= limit,
              f"first {mib(rss[0])} MiB, last {mib(rss[-1])}, max {mib(max(rss))}; median of "
              f"the last fifth {mib(l)} against {mib(r)} in the second fifth (limit {mib(limit)})")

scrapes = [json.loads(line) for line in open(f"{tmp}/scrapes.ndjson")]
bad = [s for s in scrapes if s.get("status") != 200 or not s.get("parsed")
       or s.get("injected") or s["bytes"] > 4 << 20]
sizes = [s["bytes"] for s in scrapes]
errors = sorted({s.get("error") or ("injected" if s.get("injected") else f"status {s.get('status')}")
                 for s in bad})
check("scrapes", bool(scrapes) and not bad,
      f"{len(scrapes)} scrapes, {len(bad)} bad; size first {sizes[0] if sizes else 0:,} B, max "
      f"{max(sizes, default=0):,} B, last {sizes[-1] if sizes else 0:,} B; slowest "
      f"{max((s['seconds'] for s in scrapes), default=0):.2f} s"
      + (f"; {'; '.join(e for e in errors[:3])}" if errors else ""))

attack = report("attack")
if attack is None:
    check("registry", False, "no report from ringgate-load attack")
else:
    reg = attack["kinds"]["registry"]
    admitted = reg["answers"].get("HTTP 101", 0)
    check("registry", reg["sent"] > 0 and admitted == reg["sent"],
          f"{admitted:,} of {reg['sent']:,} new ids admitted: {reg['answers'] or 'no answers'}")

check("server", alive, "alive at the end" if alive else "DIED")

print(f"\nhostile run of {secs} s: what the attack sent and got back")
if attack is not None:
    for name, k in attack["kinds"].items():
        lat = k["answer_us"] or {}
        wire = f", {k['payload_bytes'] >> 10:,} KiB as {k['wire_bytes'] >> 10:,} KiB on the wire" if k["payload_bytes"] else ""
        conns = k["connections"]
        lost = f", {k['unanswered']:,} unanswered; connections ended {conns['ends'] or 'none'}" if conns else ""
        print(f"  {name:<10} {k['sent']:,} of {k['due']:,} due{wire}; answers {k['answers'] or 'none'}{lost}; "
              f"p50 {lat.get('p50', 0) / 1000:.1f} ms, max {lat.get('max', 0) / 1000:.1f} ms")
    s = attack.get("server") or {}
    if s:
        print(f"  server     {s.get('cpu_s')} CPU-s over the attack")
print("checks:")
for name, passed, seen in checks:
    print(f"  {name:<9}{'ok  ' if passed else 'FAIL'}  {seen}")
failed = [name for name, passed, _ in checks if not passed]
print("verdict: " + ("PASS" if not failed else "FAIL: " + ", ".join(failed)))
sys.exit(1 if failed else 0)
EOF
