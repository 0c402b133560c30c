#!/usr/bin/env bash
# scripts/test.sh - run the whole ringgate test suite, from any directory.
#
# Usage: scripts/test.sh [--quick] [--only STEP[,STEP...]]
#   --quick   skip the Autobahn gate and the fuzz-target check
#   --only    run just the named steps (names below), e.g. --only build,autobahn
#
# Steps, in order; the first failing step stops the run:
#   fmt            cargo fmt --check
#   build          cargo build --bin ringgate (the debug server every later step runs)
#   autobahn       the Autobahn|Testsuite strict gate (FAILED and NON-STRICT fail) against
#                  /echo of target/debug/ringgate, started in the background once the build
#                  is there: its Python clients are single-threaded and the server is not
#                  what limits them (a debug server runs the suite as fast as a release
#                  one), so they run beside the steps below. Two lanes at once:
#                    1. RINGGATE_IO=uring, /echo compressing in the shared mode, groups 1-11
#                       and 13 (report in autobahn-reports/uring);
#                    2. the same server settings, group 12 (autobahn-reports/uring-12), then
#                       RINGGATE_IO=epoll with /echo in the dedicated mode: what differs from
#                       the first: framing, close and limits (groups 1-10) on the other
#                       driver, and in the other compression mode every series of 12 and 13
#                       (each parameter set and payload kind) at its eight smaller sizes and
#                       two chopped ones, 120 of their 216 cases (autobahn-reports/epoll;
#                       AUTOBAHN_FULL=1: all 517)
#                  so every one of the 517 cases runs at least once on io_uring in the shared
#                  mode; the outcome is reported after the other steps
#   clippy         cargo clippy --workspace --all-targets -- -D warnings
#   test           cargo test --workspace                    (default I/O driver; server and load tool)
#   test-epoll     RINGGATE_IO=epoll cargo test --tests      (fallback driver)
#   test-direct    RINGGATE_DIRECT_DESCRIPTORS=true cargo test --tests (io_uring's direct descriptors)
#   venv           ./.venv from tests/python/requirements.txt (created or updated when needed)
#   pytest         pytest tests/python                       (default driver)
#   pytest-epoll   RINGGATE_IO=epoll pytest tests/python
#   node           node --test tests/node/*.test.mjs         (npm ci into tests/node/node_modules when needed)
#   fuzz-check     cargo clippy on the fuzz targets (fuzz/, its own workspace) with stable Rust:
#                  every target type-checks and lints clean without cargo-fuzz or nightly
#                  (`cargo +nightly fuzz build` is what you run before fuzzing)
#
# Each step prints its time; the last line printed is always
# "N passed, N failed, N skipped" (steps).
# Environment: RINGGATE_BIN (binary for pytest and node, default target/debug/ringgate),
# AUTOBAHN_TIMEOUT (seconds per Autobahn run, default 1500), AUTOBAHN_FULL=1 (every case on
# both drivers), RINGGATE_CI_INSTALLS (set by .ci/run: a file holding the exit status of the
# Debian packages it installs in the background; the venv step waits for it).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)

QUICK=0 ONLY=""
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=",${2:?--only needs step names},"; shift ;;
    --only=*) ONLY=",${1#--only=}," ;;
    -h|--help) sed -n '2,43p' "$0"; exit 0 ;;
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
  await_ci_installs || return 1
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

node_run() {  # Node clients (ws, jsonwebtoken, ocpp-rpc strict), default driver
  local bin=${RINGGATE_BIN:-$ROOT/target/debug/ringgate}
  ensure_node_modules || return 1
  if [[ -z ${RINGGATE_BIN:-} ]]; then cargo build --quiet --bin ringgate || return 1; fi
  echo "node $(node --version)"
  # Files, not the directory: Node 21+ reads a directory argument as a file name.
  (unset RINGGATE_IO; RINGGATE_BIN=$bin node --test tests/node/*.test.mjs)
}

# start_server NAME DRIVER [COMPRESSION]: target/debug/ringgate on an ephemeral port, /echo
# compressing in that mode (default: off); sets SERVER_PID, PORT. NAME names its output files.
start_server() {
  local name=$1 driver=$2 out=$WORK/server-$1.out err=$WORK/server-$1.err
  : >"$out"   # truncate here: the child's own redirection may come after our first look
  RINGGATE_IO=$driver RINGGATE_ECHO_COMPRESSION=${3:-off} \
    target/debug/ringgate --host 127.0.0.1 --port 0 >"$out" 2>"$err" &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out" | head -n1)
    [[ -n $PORT ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "test.sh: ringgate ($name) did not start; its stderr:" >&2
  tail -n 30 "$err" >&2
  stop_server
  return 1
}

AUTOBAHN_SCRIPT=../shared/autobahn/run-autobahn.sh

# autobahn NAME DRIVER COMPRESSION CASES [EXCLUDE]: one run, reports in autobahn-reports/NAME.
autobahn() {
  local name=$1 driver=$2 compression=$3 cases=$4 exclude=${5:-} rc
  start_server "$name" "$driver" "$compression" || return 1
  trap stop_server EXIT
  echo "ringgate (RINGGATE_IO=$driver, /echo compression $compression, pid $SERVER_PID) on port $PORT"
  AUTOBAHN_FAIL_ON=FAILED,NON-STRICT \
  AUTOBAHN_VENV=.autobahn-venv \
  AUTOBAHN_REPORT_DIR=autobahn-reports/$name \
  AUTOBAHN_TIMEOUT=${AUTOBAHN_TIMEOUT:-1500} \
    bash "$AUTOBAHN_SCRIPT" "ws://127.0.0.1:$PORT/echo" "$cases" "$exclude"
  rc=$?
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "test.sh: ringgate ($name) died during the Autobahn run; its stderr:" >&2
    tail -n 30 "$WORK/server-$name.err" >&2
    rc=1
  fi
  stop_server
  return "$rc"
}

# The cases the epoll run needs (see the header): groups 1-10, and of each series of 12 and
# 13 the cases 1-8 (payloads up to 4 KiB or so) and 11-12 (chopped).
epoll_run_cases() {
  [[ ${AUTOBAHN_FULL:-0} == 1 ]] && { echo '*'; return; }
  local cases="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*" series n
  for series in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
    for n in 1 2 3 4 5 6 7 8 11 12; do cases+=",$series.$n"; done
  done
  echo "$cases"
}

# The two lanes of the header, at once; the second starts once the first has set up the
# Python 2.7 virtualenv (the runner writes its spec only after that), so they never both
# install into it. Every lane's output is printed whole, first lane first.
autobahn_runs() {
  if [[ ! -f $AUTOBAHN_SCRIPT ]]; then
    echo "test.sh: $AUTOBAHN_SCRIPT is missing (shared/ must sit beside the repository)" >&2
    return 1
  fi
  local spec=autobahn-reports/uring/fuzzingclient.json lane2 rc1 rc2
  rm -f "$spec"
  ( autobahn uring uring shared '*' '12.*' ) >"$WORK/autobahn-lane1.log" 2>&1 &
  local lane1=$!
  while [[ ! -s $spec ]] && kill -0 "$lane1" 2>/dev/null; do sleep 1; done
  ( autobahn uring-12 uring shared '12.*' &&
      autobahn epoll epoll dedicated "$(epoll_run_cases)" ) >"$WORK/autobahn-lane2.log" 2>&1 &
  lane2=$!
  wait "$lane1"; rc1=$?
  wait "$lane2"; rc2=$?
  echo "--- lane 1: io_uring, shared, every group but 12"
  cat "$WORK/autobahn-lane1.log"
  echo "--- lane 2: io_uring, shared, group 12; then epoll, dedicated"
  cat "$WORK/autobahn-lane2.log"
  ((rc1 == 0 && rc2 == 0))
}

# await_ci_installs: when .ci/run installs Debian packages in the background
# (RINGGATE_CI_INSTALLS names the file that gets their exit status), wait for them.
await_ci_installs() {
  local status=${RINGGATE_CI_INSTALLS:-} start=$SECONDS
  [[ -n $status ]] || return 0
  until [[ -s $status ]]; do
    if ((SECONDS - start > 1200)); then
      echo "test.sh: the background installs did not end in 20 minutes" >&2
      return 1
    fi
    sleep 1
  done
  if [[ $(cat "$status") != 0 ]]; then
    echo "test.sh: the background installs failed; their log:" >&2
    tail -n 30 "${status%.status}.log" >&2
    return 1
  fi
  echo "background installs done (waited $((SECONDS - start)) s)"
}

# The fuzz targets type-check and lint clean on stable Rust, sharing target/ with the steps
# above (no cargo-fuzz, no nightly: those are for fuzzing itself, see fuzz/README.md).
fuzz_check() {
  cargo clippy --manifest-path fuzz/Cargo.toml --target-dir target --bins -- -D warnings
}

default_driver() { (unset RINGGATE_IO; "$@"); }

step fmt cargo fmt --all -- --check
step build cargo build --bin ringgate
if [[ $QUICK == 1 ]]; then
  skip autobahn "--quick"
else
  background autobahn autobahn_runs
fi
step clippy cargo clippy --workspace --all-targets -- -D warnings
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
