#!/usr/bin/env bash
# scripts/test.sh - run the whole ringgate test suite, from any directory.
#
# Usage: scripts/test.sh [--quick] [--only STEP[,STEP...]]
#   --quick   skip the release build, the Autobahn gate and the fuzz check
#   --only    run just the named steps (names below), e.g. --only release,autobahn-epoll
#
# Steps, in order; the first failing step stops the run:
#   fmt            cargo fmt --check
#   clippy         cargo clippy --workspace --all-targets -- -D warnings
#   test           cargo test --workspace                    (default I/O driver; server and load tool)
#   test-epoll     RINGGATE_IO=epoll cargo test --tests      (fallback driver)
#   test-direct    RINGGATE_DIRECT_DESCRIPTORS=true cargo test --tests (io_uring's direct descriptors)
#   venv           ./.venv from tests/python/requirements.txt (created or updated when needed)
#   pytest         pytest tests/python                       (default driver)
#   pytest-epoll   RINGGATE_IO=epoll pytest tests/python
#   node           node --test tests/node/*.test.mjs         (npm ci into tests/node/node_modules when needed)
#   release        cargo build --release
#   autobahn-uring Autobahn|Testsuite, every case (12.* and 13.* too), strict (FAILED,NON-STRICT
#                  fail), RINGGATE_IO=uring, /echo compressing in the shared mode
#   autobahn-epoll the same with RINGGATE_IO=epoll and the dedicated mode
#   fuzz-check     cargo +nightly fuzz check: every target type-checks (when fuzz/Cargo.toml
#                  exists; a full `fuzz build` took 16 minutes of CI)
#
# The last line printed is always "N passed, N failed, N skipped" (steps).
# Environment: RINGGATE_BIN (binary for pytest and node, default target/debug/ringgate),
# AUTOBAHN_TIMEOUT (seconds per Autobahn run, default 1500).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
ROOT=$(pwd)

QUICK=0 ONLY=""
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=",${2:?--only needs step names},"; shift ;;
    --only=*) ONLY=",${1#--only=}," ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
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

cleanup() { stop_server; rm -rf "$WORK"; }
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

autobahn() {  # autobahn DRIVER COMPRESSION
  local driver=$1 compression=$2 rc script=../shared/autobahn/run-autobahn.sh
  if [[ ! -f $script ]]; then
    echo "test.sh: $script is missing (shared/ must sit beside the repository)" >&2
    return 1
  fi
  start_server "$driver" "$compression" || return 1
  echo "ringgate (RINGGATE_IO=$driver, /echo compression $compression, pid $SERVER_PID) on port $PORT"
  AUTOBAHN_FAIL_ON=FAILED,NON-STRICT \
  AUTOBAHN_VENV=.autobahn-venv \
  AUTOBAHN_REPORT_DIR=autobahn-reports/$driver \
  AUTOBAHN_TIMEOUT=${AUTOBAHN_TIMEOUT:-1500} \
    bash "$script" "ws://127.0.0.1:$PORT/echo" '*'
  rc=$?
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "test.sh: ringgate ($driver) died during the Autobahn run; its stderr:" >&2
    tail -n 30 "$WORK/server-$driver.err" >&2
    rc=1
  fi
  stop_server
  return "$rc"
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
step test default_driver cargo test --workspace --no-fail-fast
step test-epoll env RINGGATE_IO=epoll cargo test --no-fail-fast --tests
step test-direct default_driver env RINGGATE_DIRECT_DESCRIPTORS=true cargo test --no-fail-fast --tests
step venv ensure_venv
step pytest pytest_run ""
step pytest-epoll pytest_run epoll
step node node_run

if [[ $QUICK == 1 ]]; then
  skip release "--quick"
  skip autobahn-uring "--quick"
  skip autobahn-epoll "--quick"
  skip fuzz-check "--quick"
else
  step release cargo build --release
  step autobahn-uring autobahn uring shared
  step autobahn-epoll autobahn epoll dedicated
  if [[ -f fuzz/Cargo.toml ]]; then
    step fuzz-check fuzz_check
  else
    skip fuzz-check "no fuzz/Cargo.toml yet"
  fi
fi

cleanup
trap - EXIT
summary
