#!/usr/bin/env bash
# scripts/compare.sh - ringgate side by side with other WebSocket echo and pub/sub servers.
#
# Usage: scripts/compare.sh [--rounds N] [--only WORKLOAD[,...]] [--servers NAME[,...]]
#                           [--server NAME=COMMAND]... [--json FILE] [--no-build]
#   --rounds N        rounds of the rotation (default 3); the table shows medians
#   --only W,...      workloads to run: echo-20, echo-16k, storm, fanout, idle, and
#                     echo-uws when uWebSockets' load_test is built (default all)
#   --servers N,...   servers to run, by name (default: all built-in and --server ones)
#   --server N=CMD    add a server. CMD runs as `sh -c 'exec CMD'` (use `env VAR=x ...`
#                     for environment); if it contains {port}, a free port is put there
#                     and the script waits for it to accept, otherwise CMD must print
#                     `listening on HOST:PORT` on stdout. Repeatable. e.g.
#                     --server 'myws=/opt/myws/echo --port {port}'
#                     The same CMD serves every workload, fanout included: it must
#                     then also serve /pubsub as examples/pubsub.rs does (leave it
#                     out of a fanout run with --servers or --only otherwise).
#   --json FILE       also write every run's raw record (command, exit, load JSON)
#   --no-build        use the binaries already in target/release
#
# Built-in servers: ringgate (RINGGATE_SHARDS=1; for fanout its pub/sub
# example, target/release/examples/pubsub, also RINGGATE_SHARDS=1) and the peers
# of examples/peer_echo.rs, which serve both echo and /pubsub: tungstenite
# (tokio-tungstenite), fastwebsockets, tokio-websockets, each on one
# current-thread tokio runtime. When a local build of uWebSockets is present
# (target/uws/EchoServer and target/uws/load_test, built from snapshots of
# uWebSockets and uSockets; their source is never committed, and CI, which has
# no such build, skips all of this): server uws, their examples/EchoServer
# (one thread, epoll, no TLS; answers any path; it has no /pubsub, so it sits
# out fanout), and workload echo-uws.
#
# Every server is started fresh for every run, pinned with `taskset -c 0`; the
# load client (target/release/ringgate-load) is pinned with `taskset -c 1` and
# reads the server's CPU time and RSS from /proc (--pid). Runs go in rotation,
# round by round: for each workload, every server in turn, so drift on the
# machine hits all alike; each round starts one server further on (A B C D,
# B C D A, C D A B, ...), because the first run after a workload change also
# pays for the kernel's clean-up of the previous one (10,000 sockets after a
# storm: 0.91x for whoever always went first). Workloads:
#   echo-20   throughput -c 100 --payload 20 --duration 5s
#   echo-16k  throughput -c 500 --payload 16384 --duration 5s
#   storm     storm -c 10000 --max-concurrent 500          (handshakes/s)
#   fanout    fanout -c 1000 --rate 1000 --duration 5s     (deliveries/s: 1,000 subscribers
#             of /pubsub?channel=bench, one publisher sending 1,000 64 B msgs/s)
#   idle      idle -c 10000 --max-concurrent 500 --duration 3s (server KiB RSS per connection)
#   echo-uws  uWebSockets' own client instead of ringgate-load: `load_test 100 127.0.0.1
#             PORT 0 0 16` (100 connections x 16 B, one message in flight each, binary;
#             its request patched to GET /echo), pinned to CPU 1 like ringgate-load. It
#             prints `Msg/sec` every 4 s and never stops: the first report (connection
#             set-up) is dropped, the next 3 make a 12 s window, over which the script
#             reads the server's and the client's CPU time from /proc/PID/task/*/schedstat.
# storm and idle bind to a different 40-address source range on every run, so
# TIME_WAIT left by one run never runs the next out of ports.
#
# The table gives per workload and server the median rate and the median rate
# per server CPU-second, and ringgate/peer ratios; for fanout also the median
# p50 and p99 publish-to-delivery latency. When the server is fast the
# load client may be the bottleneck (see the client CPU column, 100% = its core
# is saturated): then msgs/s mostly measures the client and only the
# per-server-CPU-second figure compares servers. For idle KiB/conn lower is
# better, so a ratio under 1 favours ringgate there.
#
# Each command is printed (prefixed `+`) before it runs; logs and per-run JSON
# go to target/compare/<time>/. A server that does not start, or a run that
# fails, is reported and the script goes on. Exit status: 0 when every run
# succeeded, 1 otherwise, 2 for bad flags or a failed build.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)

ROUNDS=3 ONLY="" SERVERS="" JSON_OUT="" BUILD=1
EXTRA_NAMES=() EXTRA_CMDS=()
die() { echo "compare.sh: $*" >&2; exit 2; }
while (($#)); do
    case "$1" in
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
        --only) ONLY=${2:?--only needs a list}; shift 2 ;;
        --servers) SERVERS=${2:?--servers needs a list}; shift 2 ;;
        --server)
            spec=${2:?--server needs NAME=COMMAND}
            [[ $spec == *=* && -n ${spec%%=*} && -n ${spec#*=} ]] || die "--server wants NAME=COMMAND, got: $spec"
            EXTRA_NAMES+=("${spec%%=*}") EXTRA_CMDS+=("${spec#*=}")
            shift 2 ;;
        --json) JSON_OUT=${2:?--json needs a file}; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
[[ -z $JSON_OUT || $JSON_OUT == /* ]] || JSON_OUT="$ROOT/$JSON_OUT"
command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v python3 >/dev/null || die "python3 not found"
taskset -c 0,1 true 2>/dev/null || die "needs CPUs 0 and 1 in the affinity mask (server on 0, load on 1)"

# ---- servers and workloads -------------------------------------------------
LOAD=target/release/ringgate-load
PEER=target/release/examples/peer_echo
RG_PUBSUB="env RINGGATE_SHARDS=1 target/release/examples/pubsub --host 127.0.0.1 --port 0"
ALL_NAMES=(ringgate tungstenite fastwebsockets tokio-websockets)
ALL_CMDS=(
    "env RINGGATE_SHARDS=1 target/release/ringgate --host 127.0.0.1 --port 0"
    "$PEER --impl tungstenite --host 127.0.0.1 --port 0"
    "$PEER --impl fastwebsockets --host 127.0.0.1 --port 0"
    "$PEER --impl tokio-websockets --host 127.0.0.1 --port 0"
)
# uWebSockets, when built locally (never committed; absent in CI)
UWS_SERVER=target/uws/EchoServer UWS_LOAD=target/uws/load_test UWS_INTERVALS=3
if [[ -x $UWS_SERVER ]]; then
    ALL_NAMES+=(uws) ALL_CMDS+=("$UWS_SERVER {port}")
fi
for i in "${!EXTRA_NAMES[@]}"; do
    for n in "${ALL_NAMES[@]}"; do [[ $n == "${EXTRA_NAMES[$i]}" ]] && die "server name used twice: $n"; done
    ALL_NAMES+=("${EXTRA_NAMES[$i]}") ALL_CMDS+=("${EXTRA_CMDS[$i]}")
done
NAMES=() CMDS=()
if [[ -n $SERVERS ]]; then
    IFS=, read -ra want <<<"$SERVERS"
    for w in "${want[@]}"; do
        found=0
        for i in "${!ALL_NAMES[@]}"; do
            [[ ${ALL_NAMES[$i]} == "$w" ]] && { NAMES+=("$w") CMDS+=("${ALL_CMDS[$i]}"); found=1; }
        done
        [[ $w == uws && ! -x $UWS_SERVER ]] && die "server uws needs a local uWebSockets build ($UWS_SERVER)"
        ((found)) || die "unknown server: $w (known: ${ALL_NAMES[*]})"
    done
else
    NAMES=("${ALL_NAMES[@]}") CMDS=("${ALL_CMDS[@]}")
fi

ALL_WORKLOADS=(echo-20 echo-16k storm fanout idle)
[[ -x $UWS_LOAD ]] && ALL_WORKLOADS=(echo-20 echo-uws echo-16k storm fanout idle)
WORKLOADS=()
if [[ -n $ONLY ]]; then
    IFS=, read -ra want <<<"$ONLY"
    for w in "${want[@]}"; do
        [[ $w == echo-uws && ! -x $UWS_LOAD ]] && die "echo-uws needs a local uWebSockets build ($UWS_LOAD)"
        [[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "unknown workload: $w (known: ${ALL_WORKLOADS[*]})"
        WORKLOADS+=("$w")
    done
else
    WORKLOADS=("${ALL_WORKLOADS[@]}")
fi

# load_args WORKLOAD RUN_INDEX -> the mode and flags (without --url/--pid/--json)
load_args() {
    local third=$(($2 % 250 + 1))
    local ips="127.0.$third.2-127.0.$third.41"
    case $1 in
        echo-20) echo "throughput -c 100 --payload 20 --duration 5s --timeout 60s" ;;
        echo-16k) echo "throughput -c 500 --payload 16384 --duration 5s --timeout 60s" ;;
        storm) echo "storm -c 10000 --max-concurrent 500 --source-ips $ips --timeout 90s" ;;
        fanout) echo "fanout -c 1000 --rate 1000 --duration 5s --timeout 60s" ;;
        idle) echo "idle -c 10000 --max-concurrent 500 --duration 3s --source-ips $ips --timeout 90s" ;;
    esac
}

# serves NAME WORKLOAD -> false when the server lacks the route (uws has no /pubsub)
serves() {
    [[ ! ($1 == uws && $2 == fanout) ]]
}

# url_path WORKLOAD -> the path and query the load client connects to
url_path() {
    case $1 in
        fanout) echo "/pubsub?channel=bench" ;;
        *) echo "/echo" ;;
    esac
}

# server_cmd NAME CMD WORKLOAD -> the command to start (ringgate serves fanout with its pub/sub example)
server_cmd() {
    if [[ $1 == ringgate && $3 == fanout ]]; then echo "$RG_PUBSUB"; else echo "$2"; fi
}

# ---- build -------------------------------------------------------------------
run() { echo "+ $*"; "$@"; }
if ((BUILD)); then
    run cargo build --release -p ringgate -p ringgate-load || exit 2
    run cargo build --release --example peer_echo --example pubsub || exit 2
fi
NEEDED=(target/release/ringgate "$LOAD" "$PEER")
[[ " ${WORKLOADS[*]} " == *" echo-uws "* ]] && NEEDED+=("$UWS_LOAD")
[[ " ${WORKLOADS[*]} " == *" fanout "* ]] && NEEDED+=(target/release/examples/pubsub)
for b in "${NEEDED[@]}"; do
    [[ -x $b ]] || die "$b is missing (drop --no-build)"
done

OUT="$ROOT/target/compare/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT" || exit 2
RECORDS="$OUT/records.jsonl"
: >"$RECORDS"
ulimit -n "$(ulimit -Hn)" 2>/dev/null # 10,000 connections need 10,000 descriptors, server and client
echo "logs and raw results: $OUT"

# ---- one run -----------------------------------------------------------------
SERVER_PID=""
stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "  (server did not stop on SIGTERM within 10 s: SIGKILL)"
        kill -KILL -- "-$SERVER_PID" 2>/dev/null || kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}
trap 'stop_server; exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server CMD TAG -> sets SERVER_PID and ADDR (host:port), or returns 1 with ERR
start_server() {
    local cmd=$1 tag=$2 port="" i line
    if [[ $cmd == *"{port}"* ]]; then
        port=$(free_port)
        cmd=${cmd//\{port\}/$port}
    fi
    echo "+ setsid taskset -c 0 sh -c 'exec $cmd' >$OUT/$tag.server.out 2>$OUT/$tag.server.err &"
    setsid taskset -c 0 sh -c "exec $cmd" >"$OUT/$tag.server.out" 2>"$OUT/$tag.server.err" </dev/null &
    SERVER_PID=$!
    ADDR=""
    for i in $(seq 300); do # 30 s
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID"
            ERR="server exited ($?) before listening: $(tail -c 300 "$OUT/$tag.server.err" | tr '\n' ' ')"
            SERVER_PID=""
            return 1
        fi
        if [[ -n $port ]]; then
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                ADDR="127.0.0.1:$port"
                return 0
            fi
        else
            line=$(grep -m1 -oE 'listening on [^ ]+:[0-9]+' "$OUT/$tag.server.out" 2>/dev/null)
            if [[ -n $line ]]; then
                ADDR=${line#listening on }
                ADDR=${ADDR/#0.0.0.0:/127.0.0.1:}
                ADDR=${ADDR/#\[::\]:/127.0.0.1:}
                return 0
            fi
        fi
        sleep 0.1
    done
    ERR="server did not listen within 30 s"
    stop_server
    return 1
}

# record K=V... : one JSON object per run into records.jsonl (load JSON read from a file)
record() {
    python3 - "$RECORDS" "$@" <<'EOF'
import json, sys
path, *kv = sys.argv[1:]
rec = {}
for item in kv:
    k, _, v = item.partition("=")
    if k == "load_file":
        try:
            with open(v) as f:
                rec["load"] = json.load(f)
        except (OSError, ValueError) as e:
            rec["load"] = None
            rec.setdefault("error", f"no JSON from the load client ({e.__class__.__name__})")
    elif k in ("round", "exit"):
        rec[k] = int(v)
    elif v:
        rec[k] = v
with open(path, "a") as f:
    f.write(json.dumps(rec) + "\n")
EOF
}

# brief one-line summary of the last record
summarise_last() {
    python3 - "$RECORDS" <<'EOF'
import json, sys
rec = json.loads(open(sys.argv[1]).read().splitlines()[-1])
d = rec.get("load")
if rec.get("error") or not d:
    print("  FAILED:", rec.get("error", "no result")); sys.exit()
def f(x, fmt="{:,.0f}"):
    return "-" if x is None else fmt.format(x)
w = rec["workload"]
if w.startswith("echo"):
    s = f"{f(d.get('msgs_per_s'))} msg/s, {f(d.get('msgs_per_server_cpu_s'))} msg/server-cpu-s"
elif w == "fanout":
    lat = d.get("latency_us") or {}
    s = (f"{f(d.get('deliveries_per_s'))} deliveries/s, {f(d.get('deliveries_per_server_cpu_s'))} /server-cpu-s, "
         f"{f(d.get('deliveries'))} of {f(d.get('expected_deliveries'))}, latency p50 {f(lat.get('p50'))} p99 {f(lat.get('p99'))} us")
elif w == "storm":
    s = f"{f(d.get('handshakes_per_s'))} hs/s, {f(d.get('handshakes_per_server_cpu_s'))} hs/server-cpu-s, p99 {f((d.get('handshake_us') or {}).get('p99'))} us"
else:
    s = f"{f(d.get('kib_per_conn'), '{:.2f}')} KiB/conn, up_at_end {d.get('up_at_end')}/{d.get('connections')}"
s += f", server cpu {f(d.get('server_cpu_s'), '{:.2f}')} s, client cpu {f(d.get('client_cpu_s'), '{:.2f}')} s / {f(d.get('elapsed_s'), '{:.2f}')} s"
if d.get("failures"):
    s += f", failures {d['failures']}"
if rec.get("exit"):
    s += f", exit {rec['exit']}"
print("  ", s)
EOF
}

# uws_load HOST PORT SERVER_PID CONNECTIONS PAYLOAD INTERVALS: runs uWebSockets'
# load_test on CPU 1 and prints one JSON object with ringgate-load's field names
# (msgs_per_s, msgs_per_server_cpu_s, server_cpu_s, client_cpu_s, elapsed_s,
# failures, timed_out) over the window from its first `Msg/sec` report to the
# INTERVALS-th after it; exit 1 when it could not measure.
uws_load() {
    python3 - "$UWS_LOAD" "$@" <<'EOF'
import glob, json, queue, subprocess, sys, threading, time
load, host, port, server_pid, conns, payload, intervals = sys.argv[1:]
intervals = int(intervals)

def run_ns(pid):
    """Sum of the run time (first field of schedstat, ns) of pid's threads."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(path).read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total

proc = subprocess.Popen(["taskset", "-c", "1", load, conns, host, port, "0", "0", payload],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
lines = queue.Queue()
def reader():
    # sample both CPU times the moment a line arrives (taskset execs: proc.pid is load_test)
    for line in proc.stdout:
        lines.put((time.monotonic(), run_ns(server_pid), run_ns(proc.pid), line.rstrip("\n")))
    lines.put(None)
threading.Thread(target=reader, daemon=True).start()

reports, fails, started, error = [], {}, False, None
deadline = time.monotonic() + 30  # it connects its sockets one after another
while len(reports) < intervals + 1:
    try:
        item = lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        error = "no Msg/sec report within 10 s" if started else "load_test did not start the benchmark within 30 s"
        break
    if item is None:
        error = f"load_test exited ({proc.wait()})"
        break
    t, srv, cli, line = item
    if line.startswith("Running benchmark now"):
        started, deadline = True, t + 10
    elif line.startswith("Msg/sec:"):
        reports.append((t, srv, cli, float(line.split()[1])))
        deadline = t + 10
    elif line.startswith("Closed!"):
        fails["closed"] = fails.get("closed", 0) + 1
    elif line.startswith("ERROR"):
        fails["error"] = fails.get("error", 0) + 1
proc.terminate()
try:
    proc.wait(5)
except subprocess.TimeoutExpired:
    proc.kill()

out = {"mode": "uws-load_test", "connections": int(conns), "payload": int(payload),
       "reports_msgs_per_s": [r[3] for r in reports], "failures": fails,
       "timed_out": error is not None}
if error is None:
    (t0, s0, c0, _), (t1, s1, c1, _) = reports[0], reports[-1]
    # each report is the responses of the last 4 s sweep over 4 (LIBUS_TIMEOUT_GRANULARITY)
    msgs = sum(4 * r[3] for r in reports[1:])
    out.update(elapsed_s=t1 - t0, msgs=msgs, msgs_per_s=msgs / (t1 - t0),
               server_cpu_s=(s1 - s0) / 1e9, client_cpu_s=(c1 - c0) / 1e9,
               msgs_per_server_cpu_s=msgs / ((s1 - s0) / 1e9) if s1 > s0 else None)
else:
    out["error"] = error
print(json.dumps(out))
if error is not None:
    print(f"uws_load: {error}", file=sys.stderr)
    sys.exit(1)
EOF
}

# ---- the rotation --------------------------------------------------------------
RUN=0
for ((round = 1; round <= ROUNDS; round++)); do
    for w in "${WORKLOADS[@]}"; do
        for ((k = 0; k < ${#NAMES[@]}; k++)); do
            i=$(((k + round - 1) % ${#NAMES[@]}))
            name=${NAMES[$i]}
            if ! serves "$name" "$w"; then
                echo "== round $round/$ROUNDS  $w  $name: skipped (no /pubsub)"
                continue
            fi
            RUN=$((RUN + 1))
            tag="r$round-$w-$name"
            echo "== round $round/$ROUNDS  $w  $name"
            if ! start_server "$(server_cmd "$name" "${CMDS[$i]}" "$w")" "$tag"; then
                echo "  FAILED: $ERR"
                record round="$round" workload="$w" server="$name" error="$ERR"
                continue
            fi
            if [[ $w == echo-uws ]]; then
                set -- uws_load "${ADDR%:*}" "${ADDR##*:}" "$SERVER_PID" 100 16 "$UWS_INTERVALS"
            else
                # shellcheck disable=SC2046 # load_args is a word list on purpose
                set -- taskset -c 1 "$LOAD" $(load_args "$w" "$RUN") --url "ws://$ADDR$(url_path "$w")" --pid "$SERVER_PID" --json
            fi
            echo "+ $*"
            "$@" >"$OUT/$tag.load.json" 2>"$OUT/$tag.load.err"
            code=$?
            alive=1
            kill -0 "$SERVER_PID" 2>/dev/null || alive=0
            stop_server
            err=""
            ((alive)) || err="server died during the run: $(tail -c 300 "$OUT/$tag.server.err" | tr '\n' ' ')"
            [[ -z $err && $code -ne 0 ]] && err="$([[ $1 == uws_load ]] && echo load_test || echo ringgate-load) exit $code: $(tail -c 300 "$OUT/$tag.load.err" | tr '\n' ' ')"
            record round="$round" workload="$w" server="$name" exit="$code" command="$*" \
                load_file="$OUT/$tag.load.json" error="$err"
            summarise_last
        done
    done
done

# ---- the table -----------------------------------------------------------------------
python3 - "$RECORDS" "$JSON_OUT" "${NAMES[*]}" "${WORKLOADS[*]}" <<'EOF'
import json, statistics, sys

records_path, json_out, names, workloads = sys.argv[1:]
names, workloads = names.split(), workloads.split()
recs = [json.loads(l) for l in open(records_path) if l.strip()]
if json_out:
    with open(json_out, "w") as f:
        json.dump(recs, f, indent=1)

# workload -> (label, primary field, per-server-CPU field, lower is better)
METRIC = {
    "echo-20": ("msgs/s (100 x 20 B)", "msgs_per_s", "msgs_per_server_cpu_s", False),
    "echo-16k": ("msgs/s (500 x 16 KiB)", "msgs_per_s", "msgs_per_server_cpu_s", False),
    "echo-uws": ("msgs/s (uWebSockets' load_test, 100 x 16 B, 1 in flight)", "msgs_per_s",
                 "msgs_per_server_cpu_s", False),
    "storm": ("handshakes/s (10k, 500 in flight)", "handshakes_per_s", "handshakes_per_server_cpu_s", False),
    "fanout": ("deliveries/s (1000 subscribers, 1 publisher x 1000 msgs/s)", "deliveries_per_s",
               "deliveries_per_server_cpu_s", False),
    "idle": ("server KiB RSS / idle conn (10k)", "kib_per_conn", None, True),
}

def bad(rec):
    """Why a run does not count, or None."""
    if rec.get("error"):
        return rec["error"]
    d = rec.get("load") or {}
    if d.get("timed_out"):
        return "timed out"
    return None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, small=False):
    if x is None:
        return "-"
    return f"{x:,.2f}" if small else f"{x:,.0f}"

def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}"

problems = []
print()
print("Medians over rounds; rg/peer = ringgate's median / this server's median;")
print("client cpu = load client CPU / elapsed (near 100%: the client is the bottleneck).")
skipped = {"fanout": ["uws"]}  # servers without the route (serves() above)
for w in workloads:
    label, key, cpu_key, lower = METRIC[w]
    out = [n for n in skipped.get(w, []) if n in names]
    wnames = [n for n in names if n not in out]
    rows = {}
    for n in wnames:
        runs = [r for r in recs if r["workload"] == w and r["server"] == n]
        ok = [r["load"] for r in runs if not bad(r)]
        fails = {}
        for d in ok:
            for k, v in (d.get("failures") or {}).items():
                fails[k] = fails.get(k, 0) + v
            if w == "idle" and d.get("up_at_end") is not None and d["up_at_end"] < d["connections"]:
                fails["down_at_end"] = fails.get("down_at_end", 0) + d["connections"] - d["up_at_end"]
        for r in runs:
            if bad(r):
                problems.append(f"{w} {n} round {r['round']}: {bad(r)}")
        if fails:
            problems.append(f"{w} {n}: failures summed over runs {fails}")
        cpu_frac = [d["client_cpu_s"] / d["elapsed_s"] for d in ok
                    if d.get("client_cpu_s") is not None and d.get("elapsed_s")]
        rows[n] = dict(
            main=med(d.get(key) for d in ok),
            cpu=med(d.get(cpu_key) for d in ok) if cpu_key else None,
            client=med(cpu_frac),
            p50=med((d.get("latency_us") or {}).get("p50") for d in ok),
            p99=med((d.get("latency_us") or {}).get("p99") for d in ok),
            ok=len(ok), total=len(runs), fails=sum(fails.values()),
        )
    rg = rows.get("ringgate", {})
    small = key == "kib_per_conn"
    print()
    print(f"{w}: {label}" + ("   (lower is better)" if lower else ""))
    latency = w == "fanout"  # publish-to-delivery latency columns
    hdr = f"  {'server':<18}{'median':>14}{'per server cpu-s':>18}{'rg/peer':>9}{'rg/peer cpu':>12}"
    hdr += f"{'p50 us':>9}{'p99 us':>9}" if latency else ""
    hdr += f"{'client cpu':>11}{'runs ok':>9}{'failures':>10}"
    print(hdr)
    print("  " + "-" * (len(hdr) - 2))
    for n in wnames:
        r = rows[n]
        peer = n != "ringgate"
        client = "-" if r["client"] is None else f"{100 * r['client']:.0f}%"
        print(f"  {n:<18}{fmt(r['main'], small):>14}{fmt(r['cpu']) if cpu_key else '-':>18}"
              f"{ratio(rg.get('main'), r['main']) if peer else '':>9}"
              f"{ratio(rg.get('cpu'), r['cpu']) if peer and cpu_key else '':>12}"
              + (f"{fmt(r['p50']):>9}{fmt(r['p99']):>9}" if latency else "")
              + f"{client:>11}{str(r['ok']) + '/' + str(r['total']):>9}{r['fails']:>10}")
    for n in out:
        print(f"  {n:<18}(not run: no /pubsub)")
    peers = [n for n in wnames if n != "ringgate" and rows[n]["main"] is not None]
    if peers:
        pick = min if lower else max
        best = pick(peers, key=lambda n: rows[n]["main"])
        line = f"  best peer: {best} ({fmt(rows[best]['main'], small)}"
        if "ringgate" in rows and rg.get("main") is not None:
            line += f", ringgate/best {ratio(rg['main'], rows[best]['main'])}"
        line += ")"
        if cpu_key:
            cpeers = [n for n in peers if rows[n]["cpu"] is not None]
            if cpeers:
                bc = max(cpeers, key=lambda n: rows[n]["cpu"])
                line += f"; per server cpu-s: {bc} ({fmt(rows[bc]['cpu'])}"
                if rg.get("cpu") is not None:
                    line += f", ringgate/best {ratio(rg['cpu'], rows[bc]['cpu'])}"
                line += ")"
        print(line)

print()
if problems:
    print("Problems:")
    for p in problems:
        print("  " + p)
else:
    print("No failed runs and no failure counts.")
if json_out:
    print(f"raw results: {json_out}")
sys.exit(1 if any(bad(r) for r in recs) else 0)
EOF
