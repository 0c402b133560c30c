#!/usr/bin/env bash
# scripts/scale.sh - how many idle connections one ringgate process holds, and
# what they cost: server RSS per connection, its process descriptors, the
# kernel's socket counts (/proc/net/sockstat), and /health throughout.
#
# Usage: scripts/scale.sh [--preset million] [--shards N] [--direct]
#                         [--clients P] [--per N] [--max-concurrent C]
#                         [--hold S] [--no-build]
#   --preset million  one million connections (1,003,600): --direct --shards 52
#                     --clients 52 --per 19300 --max-concurrent 150 --hold 120,
#                     server pings off (WS_PING_PERIOD=0: on 2 cores, 52 load
#                     processes cannot also answer a million pings within
#                     WS_PONG_WAIT, and the server rightly cuts them);
#                     needs ~8 GiB of RAM for both ends, takes ~3 minutes
#   --shards N        server shards (default 2)
#   --direct          RINGGATE_DIRECT_DESCRIPTORS=true: sockets in each shard's
#                     registered file table, so one process passes RLIMIT_NOFILE
#                     (each table holds at most RLIMIT_NOFILE entries: the
#                     server's start-up line prints the arithmetic)
#   --clients P       ringgate-load idle processes (default 2); each needs one
#                     descriptor per connection, so P x N spreads the clients' side
#   --per N           connections per client process (default 9900)
#   --max-concurrent C  handshakes in flight per client (default 500)
#   --hold S          seconds each client holds its connections after its
#                     own connect phase (default 40); the server is measured
#                     10 s after it counts them all
#   --no-build        use the binaries already in target/release
#
# The server gets MAX_CONNECTIONS = P x N. Every client binds to its own
# 39-address loopback range (127.(10+i).7.2-40), so the run never runs out of
# ephemeral ports. /health is asked every 2 s for the whole run on the
# server's internal admin address (RINGGATE_ADMIN_LISTEN; it must always
# answer 200) and on the public port (reported only: there it waits in the
# same accept queues as the storm). Loopback only;
# the run stops by itself. Exit status 0 when every connection was up at the
# end and /health never failed, 1 otherwise, 2 for bad flags.
#
# Examples (a machine whose hard open-files limit is 20,000):
#   scripts/scale.sh                                        # 19,800 connections
#   scripts/scale.sh --direct --shards 4 --clients 6 --per 12500   # 75,000
#   scripts/scale.sh --preset million                        # 1,003,600
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

SHARDS=2 DIRECT=false CLIENTS=2 PER=9900 CONCURRENT=500 HOLD=40 BUILD=1
PING=${WS_PING_PERIOD:-60s}
die() { echo "scale.sh: $*" >&2; exit 2; }
while (($#)); do
    case $1 in
        --preset)
            [[ ${2:-} == million ]] || die "--preset knows only: million"
            DIRECT=true SHARDS=52 CLIENTS=52 PER=19300 CONCURRENT=150 HOLD=120 PING=0
            shift 2 ;;
        --shards) SHARDS=${2:?}; shift 2 ;;
        --direct) DIRECT=true; shift ;;
        --clients) CLIENTS=${2:?}; shift 2 ;;
        --per) PER=${2:?}; shift 2 ;;
        --max-concurrent) CONCURRENT=${2:?}; shift 2 ;;
        --hold) HOLD=${2:?}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
for v in SHARDS CLIENTS PER CONCURRENT HOLD; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} must be a positive number"
done
((CLIENTS <= 240)) || die "--clients is at most 240 (one source range each)"
((HOLD >= 15)) || die "--hold must be at least 15 s (the server is measured 10 s before the end)"
TOTAL=$((CLIENTS * PER))

if ((BUILD)); then
    cargo build --release -p ringgate -p ringgate-load || exit 2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null
OUT=$(mktemp -d)
SERVER_PID="" HEALTH_PID=""
cleanup() {
    [[ -n $HEALTH_PID ]] && kill "$HEALTH_PID" 2>/dev/null
    [[ -n $SERVER_PID ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$OUT"
}
trap cleanup EXIT

env RINGGATE_DIRECT_DESCRIPTORS=$DIRECT RINGGATE_SHARDS="$SHARDS" MAX_CONNECTIONS="$TOTAL" \
    RINGGATE_ADMIN_LISTEN=127.0.0.1:0 WS_PING_PERIOD="$PING" \
    target/release/ringgate --host 127.0.0.1 --port 0 >"$OUT/server.out" 2>"$OUT/server.err" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 100); do
    ADDR=$(grep -m1 -oE '127\.0\.0\.1:[0-9]+' "$OUT/server.out" 2>/dev/null) && break
    sleep 0.1
done
[[ -n $ADDR ]] || { cat "$OUT/server.err" >&2; die "the server did not start"; }
ADMIN=$(grep -m1 -oE 'also on 127\.0\.0\.1:[0-9]+' "$OUT/server.err" | grep -oE '127\.0\.0\.1:[0-9]+')
[[ -n $ADMIN ]] || die "the server did not report its admin address" 
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
RSS0=$(rss)
echo "ringgate on $ADDR (shards $SHARDS, direct descriptors $DIRECT, MAX_CONNECTIONS $TOTAL), RSS $RSS0 KiB"
grep -hE 'direct descriptors:|capped at' "$OUT/server.err" | sed 's/^[^ ]* *[A-Z]* */  server: /'

# /health every 2 s on the internal admin address (RINGGATE_ADMIN_LISTEN),
# which must always answer, and on the public port, which shares its accept
# queues with the storm (reported, not judged): one line per answer each.
(
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        for where in admin:$ADMIN public:$ADDR; do
            line=$(curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' "http://${where#*:}/health") ||
                line="000 5"
            echo "${where%%:*} $line" >>"$OUT/health.log"
        done
        sleep 2
    done
) &
HEALTH_PID=$!

START=$SECONDS
LOADS=()
for i in $(seq "$CLIENTS"); do
    target/release/ringgate-load idle -c "$PER" --max-concurrent "$CONCURRENT" --duration "${HOLD}s" \
        --source-ips "127.$((10 + i)).7.2-127.$((10 + i)).7.40" --url "ws://$ADDR/echo" --json \
        >"$OUT/load.$i.json" 2>"$OUT/load.$i.err" &
    LOADS+=($!)
done
# The clients hold for --hold once they connected: the connect phase is over
# when the server counts them all, or when its count stops growing.
# Each client holds for --hold after its own connect phase, so measuring 10 s
# after the server counts everyone (or its count stops growing for 10 s)
# sees every connection still up.
up() { curl -s -m 5 "http://$ADMIN/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"])' 2>/dev/null || echo 0; }
last=-1 same=0
while ((SECONDS - START < 600)); do
    now=$(up)
    ((now >= TOTAL)) && break
    if ((now > 0 && now == last)); then ((++same >= 5)) && break; else same=0; fi
    last=$now
    sleep 2
done
CONNECT_S=$((SECONDS - START))
sleep 10
UP=$(up)
RSS1=$(rss)
FDS=$(find "/proc/$SERVER_PID/fd" -mindepth 1 | wc -l)
HEALTH=$(curl -s "http://$ADMIN/health")
SOCKSTAT=$(head -2 /proc/net/sockstat | tr '\n' ' ')
MEM=$(free -m | awk '/^Mem:/ {print $3}')
wait "${LOADS[@]}"
kill "$HEALTH_PID" 2>/dev/null
HEALTH_PID=""
CLOSES=$(grep -h 'server closed' "$OUT/server.err" | sed 's/^[^ ]* *[A-Z]* */  /')

python3 - "$OUT" "$CLIENTS" "$PER" "$RSS0" "$RSS1" "$FDS" "$HEALTH" "$SOCKSTAT" "$CONNECT_S" "$MEM" "$CLOSES" "$UP" <<'EOF'
import json, sys
out, clients, per, rss0, rss1, fds, health, sockstat, connect_s, mem, closes, server_up = sys.argv[1:]
clients, per, rss0, rss1 = int(clients), int(per), int(rss0), int(rss1)
up = 0
for i in range(1, clients + 1):
    try:
        d = json.load(open(f"{out}/load.{i}.json"))
    except (OSError, ValueError):
        print(f"client {i}: no result: {open(f'{out}/load.{i}.err').read().strip()[-300:]}")
        continue
    up += d["up_at_end"]
    if clients <= 12 or d["up_at_end"] < per or d["failures"]:
        print(f"client {i}: {d['connected']:,} connected, {d['up_at_end']:,} up at end, failures {d['failures'] or 'none'}")
total = clients * per
answers = [l.split() for l in open(f"{out}/health.log")]
def health_line(where):
    mine = [a for a in answers if a[0] == where]
    bad = [a for a in mine if a[1] != "200"]
    worst = max((float(a[2]) for a in mine), default=0.0)
    return mine, bad, f"{len(mine)} answers, {len(bad)} not 200, slowest {worst * 1000:.0f} ms"
admin, bad, admin_text = health_line("admin")
_, _, public_text = health_line("public")
print(f"connections held: {up:,} of {total:,} (all connected within {connect_s} s; the server counted {int(server_up):,} at the measurement)")
print(f"server RSS {rss0:,} -> {rss1:,} KiB: {(rss1 - rss0) / total:.2f} KiB per connection")
print(f"server process descriptors: {fds}; machine memory in use: {int(mem):,} MiB")
print(f"/health on the admin address: {admin_text}; last: {health}")
print(f"/health on the public port (queued behind the storm's accepts): {public_text}")
print(f"/proc/net/sockstat: {sockstat}")
print("server-initiated closes: " + (("\n" + closes) if closes else "none logged"))
sys.exit(0 if up == total and int(server_up) == total and admin and not bad else 1)
EOF
