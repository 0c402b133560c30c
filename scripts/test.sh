#!/usr/bin/env bash
# scripts/test.sh - run the whole ringgate test suite, from any directory.
#
# Usage: scripts/test.sh [--quick] [--only STEP[,STEP...]]
#   --quick   skip the release build, the Autobahn gate and the fuzz check
#   --only    run just the named steps (names below), e.g. --only release,autobahn
#
# Steps, in order; the first failing step stops the run:
#   fmt            cargo fmt --check
#   clippy         cargo clippy --workspace --all-targets -- -D warnings
#   release        cargo build --release (the Autobahn gate's server)
#   autobahn       started in the background once the release build is there, so its
#                  Python client (one core) runs while the steps below use the other;
#                  two runs, one after the other:
#                    1. RINGGATE_IO=uring, /echo compressing in the shared mode: every
#                       case (517, compression groups 12 and 13 too);
#                    2. RINGGATE_IO=epoll, /echo in the dedicated mode: what differs from
#                       the first run: framing, close and limits (groups 1-10) on the other
#                       driver, and in the other compression mode every series of 12 and
#                       13 (each parameter set and payload kind) at its eight smaller sizes
#                       and two chopped ones, 120 of their 216 cases (AUTOBAHN_FULL=1: all)
#                  strict: FAILED and NON-STRICT fail; its outcome (reports in
#                  autobahn-reports/uring and /epoll) is reported after the other steps
#   test           cargo test --workspace                    (default I/O driver; server and load tool)
#   test-epoll     RINGGATE_IO=epoll cargo test --tests      (fallback driver)
#   test-direct    RINGGATE_DIRECT_DESCRIPTORS=true cargo test --tests (io_uring's direct descriptors)
#   venv           ./.venv from tests/python/requirements.txt (created or updated when needed)
#   pytest         pytest tests/python                       (default driver)
#   pytest-epoll   RINGGATE_IO=epoll pytest tests/python
#   node           node --test tests/node/*.test.mjs         (npm ci into tests/node/node_modules when needed)
#   fuzz-check     cargo +nightly fuzz check: every target type-checks (when fuzz/Cargo.toml
#                  exists; a full `fuzz build` took 16 minutes of CI)
#
# Each step prints its time; the last line printed is always
# "N passed, N failed, N skipped" (steps).
# Environment: RINGGATE_BIN (binary for pytest and node, default target/debug/ringgate),
# AUTOBAHN_TIMEOUT (seconds per Autobahn run, default 1500), AUTOBAHN_FULL=1 (every case on
# both drivers).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)

QUICK=0 ONLY=""
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=",${2:?--only needs step names},"; shift ;;
    --only=*) ONLY=",${1#--only=}," ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

PASSED=0 FAILED=0 SKIPPED=0
SERVER_PID=""
WORK=$(mktemp -d)

summary() { echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"; }

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

# Steps running in the background: name -> pid of the subshell that runs them.
declare -A BG_PID=()

stop_background() {
  local name pid
  for name in "${!BG_PID[@]}"; do
    pid=${BG_PID[$name]}
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "BG_PID[$name]"
  done
}

cleanup() { stop_background; stop_server; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "test.sh: interrupted" >&2; FAILED=$((FAILED + 1)); cleanup; summary; trap - EXIT; exit 130' INT TERM

# step NAME COMMAND...: runs one step; on failure prints why, the summary, and exits.
step() {
  local name=$1; shift
  [[ -z $ONLY || $ONLY == *",$name,"* ]] || return 0
  local start=$SECONDS
  echo
  echo "==> [$name] $*"
  if "$@"; then
    PASSED=$((PASSED + 1))
    echo "==> [$name] ok ($((SECONDS - start)) s)"
  else
    local rc=$?
    FAILED=$((FAILED + 1))
    echo
    echo "test.sh: step '$name' FAILED (exit status $rc after $((SECONDS - start)) s); stopping here."
    cleanup
    trap - EXIT
    summary
    exit 1
  fi
}

# background NAME COMMAND...: starts a step in a process group of its own (so stopping it
# stops its servers too), its output in $WORK/NAME.log; `finish NAME` reports it.
background() {
  local name=$1; shift
  [[ -z $ONLY || $ONLY == *",$name,"* ]] || return 0
  echo
  echo "==> [$name] started in the background: $*"
  set -m
  # Job control on for this one spawn only: the subshell leads a process group of its own
  # (and turns job control off again, so what it starts stays in that group).
  ( set +m; start=$SECONDS; "$@" >"$WORK/$name.log" 2>&1; echo "$? $((SECONDS - start))" >"$WORK/$name.rc" ) &
  BG_PID[$name]=$!
  set +m
}

# finish NAME: waits for a background step, prints its output, and counts it like a step.
finish() {
  local name=$1 rc secs
  [[ -n ${BG_PID[$name]:-} ]] || return 0
  wait "${BG_PID[$name]}" 2>/dev/null
  unset "BG_PID[$name]"
  read -r rc secs <"$WORK/$name.rc" 2>/dev/null || { rc=1 secs=?; }
  echo
  echo "==> [$name] (ran in the background)"
  cat "$WORK/$name.log"
  if [[ $rc == 0 ]]; then
    PASSED=$((PASSED + 1))
    echo "==> [$name] ok ($secs s)"
  else
    FAILED=$((FAILED + 1))
    echo
    echo "test.sh: step '$name' FAILED (exit status $rc after $secs s); stopping here."
    cleanup
    trap - EXIT
    summary
    exit 1
  fi
}

skip() {
  [[ -z $ONLY || $ONLY == *",$1,"* ]] || return 0
  SKIPPED=$((SKIPPED + 1))
  echo
  echo "==> [$1] skipped: $2"
}

# --- the steps ------------------------------------------------------------------------

ensure_venv() {
  local req=tests/python/requirements.txt stamp=.venv/.requirements.sha256 want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    rm -rf .venv
    python3 -m venv .venv || return 1
  fi
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    .venv/bin/python -m pip install --disable-pip-version-check -q -r "$req" || return 1
    echo "$want" >"$stamp"
  fi
  .venv/bin/python -c 'import websockets, pytest; print("websockets", websockets.__version__, "pytest", pytest.__version__)'
}

pytest_run() {  # pytest_run [RINGGATE_IO value or ""]
  local bin=${RINGGATE_BIN:-$ROOT/target/debug/ringgate}
  if [[ -z ${RINGGATE_BIN:-} ]]; then cargo build --quiet --bin ringgate || return 1; fi
  if [[ -n $1 ]]; then
    RINGGATE_BIN=$bin RINGGATE_IO=$1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/python
  else
    (unset RINGGATE_IO; RINGGATE_BIN=$bin .venv/bin/python -m pytest -q -p no:cacheprovider tests/python)
  fi
}

# tests/node/node_modules from package-lock.json, reinstalled (npm ci) when the lock changed.
ensure_node_modules() {
  local dir=tests/node want
  local stamp=$dir/node_modules/.package-lock.sha256
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "test.sh: node and npm are needed (.ci/run installs Debian's nodejs and npm)" >&2
    return 1
  fi
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ ! -d $dir/node_modules || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund) || return 1
    echo "$want" >"$stamp"
  fi
}

node_run() {  # the realtime service from Node clients (ws, jsonwebtoken), default driver
  local bin=${RINGGATE_BIN:-$ROOT/target/debug/ringgate}
  ensure_node_modules || return 1
  if [[ -z ${RINGGATE_BIN:-} ]]; then cargo build --quiet --bin ringgate || return 1; fi
  echo "node $(node --version)"
  # Files, not the directory: Node 21+ reads a directory argument as a file name.
  (unset RINGGATE_IO; RINGGATE_BIN=$bin node --test tests/node/*.test.mjs)
}

# start_server DRIVER [COMPRESSION]: target/release/ringgate on an ephemeral port, /echo
# compressing in that mode (default: off); sets SERVER_PID, PORT.
start_server() {
  local driver=$1 out=$WORK/server-$1.out err=$WORK/server-$1.err
  : >"$out"   # truncate here: the child's own redirection may come after our first look
  RINGGATE_IO=$driver RINGGATE_ECHO_COMPRESSION=${2:-off} \
    target/release/ringgate --host 127.0.0.1 --port 0 >"$out" 2>"$err" &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out" | head -n1)
    [[ -n $PORT ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "test.sh: ringgate ($driver) did not start; its stderr:" >&2
  tail -n 30 "$err" >&2
  stop_server
  return 1
}

autobahn() {  # autobahn DRIVER COMPRESSION CASES
  local driver=$1 compression=$2 cases=$3 rc script=../shared/autobahn/run-autobahn.sh
  if [[ ! -f $script ]]; then
    echo "test.sh: $script is missing (shared/ must sit beside the repository)" >&2
    return 1
  fi
  start_server "$driver" "$compression" || return 1
  trap stop_server EXIT
  echo "ringgate (RINGGATE_IO=$driver, /echo compression $compression, pid $SERVER_PID) on port $PORT"
  AUTOBAHN_FAIL_ON=FAILED,NON-STRICT \
  AUTOBAHN_VENV=.autobahn-venv \
  AUTOBAHN_REPORT_DIR=autobahn-reports/$driver \
  AUTOBAHN_TIMEOUT=${AUTOBAHN_TIMEOUT:-1500} \
    bash "$script" "ws://127.0.0.1:$PORT/echo" "$cases"
  rc=$?
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "test.sh: ringgate ($driver) died during the Autobahn run; its stderr:" >&2
    tail -n 30 "$WORK/server-$driver.err" >&2
    rc=1
  fi
  stop_server
  return "$rc"
}

# The cases the second Autobahn run needs (see the header): groups 1-10, and of each series
# of 12 and 13 the cases 1-8 (payloads up to 4 KiB or so) and 11-12 (chopped).
second_run_cases() {
  [[ ${AUTOBAHN_FULL:-0} == 1 ]] && { echo '*'; return; }
  local cases="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*" series n
  for series in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
    for n in 1 2 3 4 5 6 7 8 11 12; do cases+=",$series.$n"; done
  done
  echo "$cases"
}

# Both Autobahn runs, one after the other (two Python clients at once would leave the
# foreground steps no core); stops at the first that fails.
autobahn_runs() {
  autobahn uring shared '*' || return 1
  autobahn epoll dedicated "$(second_run_cases)"
}

fuzz_check() {
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "test.sh: cargo-fuzz is not installed (cargo install cargo-fuzz --locked; .ci/run does it)" >&2
    return 1
  fi
  cargo +nightly fuzz check
}

default_driver() { (unset RINGGATE_IO; "$@"); }

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
if [[ $QUICK == 1 ]]; then
  skip release "--quick"
  skip autobahn "--quick"
else
  step release cargo build --release
  background autobahn autobahn_runs
fi
step test default_driver cargo test --workspace --no-fail-fast
step test-epoll env RINGGATE_IO=epoll cargo test --no-fail-fast --tests
step test-direct default_driver env RINGGATE_DIRECT_DESCRIPTORS=true cargo test --no-fail-fast --tests
step venv ensure_venv
step pytest pytest_run ""
step pytest-epoll pytest_run epoll
step node node_run
if [[ $QUICK == 1 ]]; then
  skip fuzz-check "--quick"
elif [[ -f fuzz/Cargo.toml ]]; then
  step fuzz-check fuzz_check
else
  skip fuzz-check "no fuzz/Cargo.toml yet"
fi
finish autobahn

cleanup
trap - EXIT
summary
