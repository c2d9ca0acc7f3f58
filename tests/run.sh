#!/usr/bin/env bash
# Runs the whole test suite against real servers.
#
#   bash tests/run.sh            # fmt, clippy, every test (PostgreSQL + a Kafka-protocol broker process)
#   bash tests/run.sh --quick    # skip fmt and clippy
#
# It makes sure PostgreSQL answers on 127.0.0.1:5432 (starting the local cluster if it is down), makes sure a
# tansu broker binary is available (building it from crates.io once, cached outside the clone), starts the broker
# on a free loopback port with throw-away storage, exports both addresses to the tests, and stops whatever it
# started when it exits, also on failure.
#
# Environment:
#   TODO_CACHE_DIR      where tools and the build cache live (default: ~/.cache/todo-tools)
#   CARGO_TARGET_DIR    cargo's build cache (default: ~/.cache/todo-target)
#   TODO_PG_URL         PostgreSQL server URL (default: postgres://postgres@127.0.0.1:5432/postgres)
#   CI=true             a missing server fails the run instead of skipping the tests that need it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1

CACHE="${TODO_CACHE_DIR:-$HOME/.cache/todo-tools}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/todo-target}"
export PROPTEST_CASES="${PROPTEST_CASES:-1000}"
TANSU_VERSION=0.6.0
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU="$TANSU_ROOT/bin/tansu"
mkdir -p "$CACHE"

log() { printf '\n==> %s\n' "$*" >&2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/todo-tests.XXXXXX")"
TANSU_PID=""
STARTED_PG=""
cleanup() {
  local rc=$?
  if [[ -n "$TANSU_PID" ]] && kill -0 "$TANSU_PID" 2>/dev/null; then
    log "stopping the broker (pid $TANSU_PID)"
    kill "$TANSU_PID" 2>/dev/null || true
    wait "$TANSU_PID" 2>/dev/null || true
  fi
  if [[ -n "$STARTED_PG" ]]; then
    log "stopping PostgreSQL cluster $STARTED_PG (this script started it)"
    pg_ctlcluster --skip-systemctl-redirect $STARTED_PG stop || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# --- PostgreSQL -------------------------------------------------------------------------------------------
export TODO_TEST_DATABASE_URL="${TODO_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! wait_for_port 127.0.0.1 5432 1; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    log "PostgreSQL is down: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    STARTED_PG="$version main"
    wait_for_port 127.0.0.1 5432 30 || { echo "PostgreSQL did not come up" >&2; exit 1; }
  elif [[ "${CI:-}" == "true" ]]; then
    echo "PostgreSQL is not running on 127.0.0.1:5432 and cannot be started here" >&2
    exit 1
  else
    log "WARNING: no PostgreSQL on 127.0.0.1:5432: the PostgreSQL tests will be SKIPPED"
    unset TODO_TEST_DATABASE_URL
  fi
fi

# --- the broker process ------------------------------------------------------------------------------------
if [[ ! -x "$TANSU" ]]; then
  log "building tansu $TANSU_VERSION from crates.io (once; cached in $TANSU_ROOT)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TANSU_ROOT" --target-dir "$CACHE/tansu-build"
fi
export TODO_TANSU_BIN="$TANSU"
KAFKA_PORT="$(free_port)"
log "starting tansu on 127.0.0.1:$KAFKA_PORT"
"$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --storage-engine "memory://tansu/" \
  >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
if ! wait_for_port 127.0.0.1 "$KAFKA_PORT" 60; then
  echo "tansu did not start; its log:" >&2
  cat "$WORK/tansu.log" >&2
  exit 1
fi
export TODO_TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"

# --- the Helm renderer for the chart test ------------------------------------------------------------------
# The deployment test renders the chart with the `helm` CLI, or offline with Helm's Go SDK from PyPI.
if ! command -v helm >/dev/null && ! python3 -c 'import helm_python' 2>/dev/null; then
  log "installing helm-python-sdk (Helm's template engine) from PyPI for the chart test"
  python3 -m pip install --quiet helm-python-sdk==0.2.2
fi

# --- checks and tests -------------------------------------------------------------------------------------
if [[ $QUICK == 0 ]]; then
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
log "cargo test (PostgreSQL: $TODO_TEST_DATABASE_URL, broker: $TODO_TEST_KAFKA_BROKERS)"
cargo test --workspace --locked --no-fail-fast
