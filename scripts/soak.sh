#!/usr/bin/env bash
# scripts/soak.sh - a soak run: examples/pubsub on 2 shards under
# `ringgate-load soak` for --duration: thousands of connections with churn
# (close handshakes, dropped sockets, half-sent handshakes), never-readers,
# garbage senders, and a 1 KiB broadcast every 10 ms; the server's RSS and
# descriptors sampled every 10 s (one line each on stderr), GET /health every
# second. Then a summary, and a verdict on whether RSS and descriptors stayed
# flat after the 60 s warm-up.
#
# Usage: scripts/soak.sh [--duration D] [--connections N] [--driver uring|epoll]
#                        [--no-build] [-- SOAK-FLAGS...]
#   --duration D     how long the mix runs (default 10m; the verdict needs
#                    samples after the warm-up, so at least about 80s)
#   --connections N  connections kept up (default 5000)
#   --driver D       the server's I/O driver, RINGGATE_IO (default uring)
#   --no-build       use the binaries already in target/release
#   -- SOAK-FLAGS    passed on to `ringgate-load soak` (e.g. --silent 5
#                    --warmup 30s; see its --help)
#
# The server gets RINGGATE_SHARDS=2, an ephemeral loopback port,
# RINGGATE_MAX_SEND_QUEUE=1MiB and SERVER_WRITE_TIMEOUT=10s (so never-readers
# are cut off within about a minute: first the ~4 MB loopback socket buffers
# fill) and WS_PING_PERIOD=30s (so polite subscribers answer pings).
# The JSON report and the server's log are kept in target/soak/.
# Loopback only; the run stops by itself (the load tool's --timeout is
# --duration + 2 min).
#
# Exit status: 0 when RSS and descriptors stayed flat, /health never failed
# and the server was alive at the end; 1 otherwise; 2 for bad flags, a failed
# build, or a server that did not start.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

DURATION=10m CONNECTIONS=5000 DRIVER=uring BUILD=1
die() { echo "soak.sh: $*" >&2; exit 2; }
while (($#)); do
    case $1 in
        --duration) DURATION=${2:?}; shift 2 ;;
        --connections) CONNECTIONS=${2:?}; shift 2 ;;
        --driver) DRIVER=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "--connections must be a positive number"
[[ $DRIVER == uring || $DRIVER == epoll ]] || die "--driver is uring or epoll"

if ((BUILD)); then
    cargo build --release -p ringgate-load || exit 2
    cargo build --release -p ringgate --example pubsub || exit 2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null
KEEP=target/soak
mkdir -p "$KEEP" || exit 2
STAMP=$KEEP/$DRIVER-$(date +%Y%m%d-%H%M%S)
SERVER_PID=""
cleanup() {
    [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
}
trap cleanup EXIT

env RINGGATE_SHARDS=2 RINGGATE_IO="$DRIVER" RINGGATE_MAX_SEND_QUEUE=1MiB \
    SERVER_WRITE_TIMEOUT=10s WS_PING_PERIOD=30s \
    target/release/examples/pubsub --host 127.0.0.1 --port 0 \
    >"$STAMP.server.out" 2>"$STAMP.server.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 100); do
    ADDR=$(grep -m1 -oE '127\.0\.0\.1:[0-9]+' "$STAMP.server.out" 2>/dev/null) && break
    sleep 0.1
done
[[ -n $ADDR ]] || { cat "$STAMP.server.log" >&2; die "the server did not start"; }
echo "pubsub on $ADDR (RINGGATE_IO=$DRIVER, 2 shards), pid $SERVER_PID; soak of $DURATION with $CONNECTIONS connections"

target/release/ringgate-load soak --url "ws://$ADDR/pubsub?channel=soak" \
    -c "$CONNECTIONS" --duration "$DURATION" --pid "$SERVER_PID" --json "$@" \
    >"$STAMP.json"
LOAD_STATUS=$?
ALIVE=0
kill -0 "$SERVER_PID" 2>/dev/null && ALIVE=1

python3 - "$STAMP.json" "$LOAD_STATUS" "$ALIVE" "$DRIVER" <<'EOF'
import json, sys
path, load_status, alive, driver = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    print(f"no report from ringgate-load (exit {load_status}); see {path}")
    sys.exit(1)
s = r["soak"]
g = lambda v: f"{v:,}" if isinstance(v, int) else str(v)
print(f"soak on {driver}: {r['connections']:,} connections, {s['duration_s']:.0f} s, "
      f"{s['rate']} broadcasts/s of {r['payload_bytes']} B; {r['connected']:,} handshakes")
for name in ("rss_kib", "fds"):
    f = s[name]
    if f is None:
        print(f"{name}: no samples after the {s['warmup_s']:.0f} s warm-up")
    else:
        print(f"{name}: {g(f['first'])} at {f['first_t_s']:.0f} s -> min {g(f['min'])}, max {g(f['max'])}, "
              f"last {g(f['last'])}, tail median {g(f['tail_median'])} (limit {g(f['limit'])}, slope {f['slope_per_min']:+.1f}/min): "
              f"{'flat' if f['flat'] else 'NOT FLAT'}")
h = s["health"]
worst = (h["latency_us"] or {}).get("max", 0) / 1000
kinds = f" {h['failures']} at {h['failed_at_s']} s" if h["failures"] else ""
print(f"health: {h['checks']:,} checks, {h['failed']} failed{kinds}, worst {worst:.1f} ms")
for b, v in s["behaviours"].items():
    ended = ", ".join(f"{k} {n:,}" for k, n in v["outcomes"].items()) or "none ended"
    print(f"{b}: {v['target']:,} kept up, {v['opened']:,} opened, {v['up_at_end']:,} up at end; {ended}")
c = s["silent_cut_off_us"]
if c:
    print(f"never-readers cut off after p50 {c['p50']/1e6:.1f} s, max {c['max']/1e6:.1f} s ({c['count']:,})")
print(f"garbage without the expected close code: {s['garbage_unexpected']}")
print(f"broadcasts {s['broadcasts']:,}; polite deliveries {s['polite_deliveries']:,} of "
      f"{s['polite_expected']:,} expected; publisher lost {s['publisher_lost']}; failures {r['failures'] or 'none'}")
lat, hs = r["latency_us"] or {}, r["handshake_us"] or {}
print(f"publish-to-delivery p50 {lat.get('p50', 0) / 1e3:.1f} ms, p99 {lat.get('p99', 0) / 1e3:.1f} ms; "
      f"handshake p99 {hs.get('p99', 0) / 1e3:.1f} ms; over {r['elapsed_s']:.0f} s the server used "
      f"{r['server_cpu_s']} CPU-s, this client {r['client_cpu_s']}")
print(f"server {'alive' if alive and not s['server_lost'] else 'DIED'} at the end; report {path}")
bad = []
if s["flat"] is not True:
    bad.append("RSS/descriptors not flat" if s["flat"] is False else "no samples after the warm-up")
if h["failed"] or h["checks"] == 0:
    bad.append("/health failed")
if not alive or s["server_lost"]:
    bad.append("the server died")
print("verdict: " + ("PASS" if not bad else "FAIL: " + "; ".join(bad)))
sys.exit(1 if bad else 0)
EOF
