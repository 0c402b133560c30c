#!/usr/bin/env bash
# scripts/scale.sh - how many idle connections one ringgate process holds, and
# what they cost: server RSS per connection, its process descriptors, and the
# kernel's socket counts (/proc/net/sockstat).
#
# Usage: scripts/scale.sh [--shards N] [--direct] [--clients P] [--per N]
#                         [--hold S] [--no-build]
#   --shards N   server shards (default 2)
#   --direct     RINGGATE_DIRECT_DESCRIPTORS=true: sockets in each shard's
#                registered file table, so one process passes RLIMIT_NOFILE
#   --clients P  ringgate-load idle processes (default 2); each needs one
#                descriptor per connection, so P x N spreads the clients' side
#   --per N      connections per client process (default 9900)
#   --hold S     seconds the clients hold their connections (default 40); the
#                server is measured 10 s before they let go
#   --no-build   use the binaries already in target/release
#
# Every client binds to its own 39-address loopback range (127.1X.7.2-40), so
# the run never runs out of ephemeral ports. Loopback only; the run stops by
# itself after --hold plus the handshakes. Exit status 0 when every
# connection was up at the end, 1 otherwise, 2 for bad flags.
#
# Examples (a machine whose hard open-files limit is 20,000):
#   scripts/scale.sh                                        # 19,800 connections
#   scripts/scale.sh --direct --shards 4 --clients 6 --per 12500   # 75,000
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

SHARDS=2 DIRECT=false CLIENTS=2 PER=9900 HOLD=40 BUILD=1
die() { echo "scale.sh: $*" >&2; exit 2; }
while (($#)); do
    case $1 in
        --shards) SHARDS=${2:?}; shift 2 ;;
        --direct) DIRECT=true; shift ;;
        --clients) CLIENTS=${2:?}; shift 2 ;;
        --per) PER=${2:?}; shift 2 ;;
        --hold) HOLD=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in SHARDS CLIENTS PER HOLD; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive number"
done
((CLIENTS <= 9)) || die "--clients is at most 9 (one source range each)"
((HOLD >= 15)) || die "--hold must be at least 15 s (the server is measured 10 s before the end)"

if ((BUILD)); then
    cargo build --release -p ringgate -p ringgate-load || exit 2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null
OUT=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$OUT"
}
trap cleanup EXIT

env RINGGATE_DIRECT_DESCRIPTORS=$DIRECT RINGGATE_SHARDS=$SHARDS \
    target/release/ringgate --host 127.0.0.1 --port 0 >"$OUT/server.out" 2>"$OUT/server.err" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 100); do
    ADDR=$(grep -m1 -oE '127\.0\.0\.1:[0-9]+' "$OUT/server.out" 2>/dev/null) && break
    sleep 0.1
done
[[ -n $ADDR ]] || { cat "$OUT/server.err" >&2; die "the server did not start"; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
RSS0=$(rss)
echo "ringgate on $ADDR (shards $SHARDS, direct descriptors $DIRECT), RSS $RSS0 KiB"

LOADS=()
for i in $(seq "$CLIENTS"); do
    target/release/ringgate-load idle -c "$PER" --max-concurrent 500 --duration "${HOLD}s" \
        --source-ips "127.1$i.7.2-127.1$i.7.40" --url "ws://$ADDR/echo" --json \
        >"$OUT/load.$i.json" 2>"$OUT/load.$i.err" &
    LOADS+=($!)
done
sleep $((HOLD - 10))
RSS1=$(rss)
FDS=$(find "/proc/$SERVER_PID/fd" -mindepth 1 | wc -l)
HEALTH=$(curl -s "http://$ADDR/health")
SOCKSTAT=$(head -2 /proc/net/sockstat | tr '\n' ' ')
wait "${LOADS[@]}"

python3 - "$OUT" "$CLIENTS" "$PER" "$RSS0" "$RSS1" "$FDS" "$HEALTH" "$SOCKSTAT" <<'EOF'
import json, sys
out, clients, per, rss0, rss1, fds, health, sockstat = sys.argv[1:]
clients, per, rss0, rss1 = int(clients), int(per), int(rss0), int(rss1)
up = 0
for i in range(1, clients + 1):
    try:
        d = json.load(open(f"{out}/load.{i}.json"))
    except (OSError, ValueError):
        print(f"client {i}: no result: {open(f'{out}/load.{i}.err').read().strip()[-300:]}")
        continue
    up += d["up_at_end"]
    print(f"client {i}: {d['connected']:,} connected, {d['up_at_end']:,} up at end, failures {d['failures'] or 'none'}")
total = clients * per
print(f"connections held: {up:,} of {total:,}")
print(f"server RSS {rss0:,} -> {rss1:,} KiB: {(rss1 - rss0) / total:.2f} KiB per connection")
print(f"server process descriptors: {fds}")
print(f"/health: {health}")
print(f"/proc/net/sockstat: {sockstat}")
sys.exit(0 if up == total else 1)
EOF
