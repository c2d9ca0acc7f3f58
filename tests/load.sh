#!/usr/bin/env bash
# Starts a todo deployment and runs the load generator (todo-load) against it.
#
#   bash tests/load.sh embedded    [todo-load flags...]   # one `todo serve` process: SQLite file + in-process broker
#   bash tests/load.sh distributed [todo-load flags...]   # PostgreSQL + a tansu broker + `todo serve --api-only` + `todo worker`
#
# Flags after the mode go to todo-load (for example `--concurrency 64 --duration 30 --mix create=100 --baseline
# --json out.json`; `todo-load --help` lists them). The script builds both binaries in release mode, starts
# everything on free loopback ports with throw-away data (a temporary directory; fresh PostgreSQL databases; a
# broker with in-memory storage), passes the server process ids (for RSS and CPU), the /metrics URL and, in the
# distributed mode, the baseline PostgreSQL database and broker to todo-load, and stops and removes whatever it
# started when it exits, also on failure. The exit status is todo-load's.
#
# Environment:
#   TODO_CACHE_DIR      where the broker binary is built and kept (default: ~/.cache/todo-tools)
#   CARGO_TARGET_DIR    cargo's build cache (default: ~/.cache/todo-target)
#   TODO_PG_URL         PostgreSQL server URL (default: postgres://postgres@127.0.0.1:5432/postgres)
#   TODO_LOAD_KEEP=1    keep the temporary directory with the server logs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:-}"
case "$MODE" in
  embedded | distributed) shift ;;
  *)
    echo "usage: bash tests/load.sh embedded|distributed [todo-load flags...]" >&2
    exit 64
    ;;
esac

CACHE="${TODO_CACHE_DIR:-$HOME/.cache/todo-tools}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/todo-target}"
PG_URL="${TODO_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
TANSU_VERSION=0.6.0
TANSU_ROOT="$CACHE/tansu-$TANSU_VERSION"
TANSU="$TANSU_ROOT/bin/tansu"

log() { printf '==> %s\n' "$*" >&2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/todo-load.XXXXXX")"
PIDS=()
DATABASES=()
STARTED_PG=""
cleanup() {
  local rc=$?
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    if kill -0 "${PIDS[i]}" 2>/dev/null; then
      kill "${PIDS[i]}" 2>/dev/null || true
      wait "${PIDS[i]}" 2>/dev/null || true
    fi
  done
  for db in "${DATABASES[@]}"; do
    psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  if [[ -n "$STARTED_PG" ]]; then
    log "stopping PostgreSQL cluster $STARTED_PG (this script started it)"
    pg_ctlcluster --skip-systemctl-redirect $STARTED_PG stop || true
  fi
  if [[ "${TODO_LOAD_KEEP:-}" == 1 ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
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

# Waits for "listening on http://ADDR" in a server's log and prints ADDR.
wait_listening() { # log pid seconds
  local i addr
  for ((i = 0; i < $3 * 10; i++)); do
    addr="$(sed -n 's/^listening on http:\/\/\(.*\)$/\1/p' "$1" | head -1)"
    if [[ -n "$addr" ]]; then
      echo "$addr"
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "the server did not start; its log:" >&2
  cat "$1" >&2
  return 1
}

log "building todo and todo-load (release)"
(cd "$ROOT" && cargo build --release --locked -p todo-bin --bin todo -p todo-e2e --bin todo-load)
TODO="$CARGO_TARGET_DIR/release/todo"
LOAD="$CARGO_TARGET_DIR/release/todo-load"
SECRET="load-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export TODO_JWT_SECRET="$SECRET"

if [[ "$MODE" == embedded ]]; then
  (cd "$WORK" && exec "$TODO" serve --listen 127.0.0.1:0 --database-url sqlite://todo.db) 2>"$WORK/serve.log" >/dev/null &
  PIDS+=($!)
  ADDR="$(wait_listening "$WORK/serve.log" "${PIDS[0]}" 60)"
  log "todo serve (embedded, pid ${PIDS[0]}) on $ADDR, data in $WORK"
  "$LOAD" --url "http://$ADDR" --server-pid "serve=${PIDS[0]}" --metrics-url "http://$ADDR/metrics" \
    --label embedded "$@"
  exit $?
fi

# --- distributed: PostgreSQL ---------------------------------------------------------------------------------
if ! wait_for_port 127.0.0.1 5432 1; then
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    log "PostgreSQL is down: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    STARTED_PG="$version main"
    wait_for_port 127.0.0.1 5432 30 || { echo "PostgreSQL did not come up" >&2; exit 1; }
  else
    echo "PostgreSQL is not running on 127.0.0.1:5432" >&2
    exit 1
  fi
fi
DB="todo_load_$$"
BASE_DB="todo_load_$$_baseline"
for db in "$DB" "$BASE_DB"; do
  psql "$PG_URL" -q -c "CREATE DATABASE $db" >/dev/null
  DATABASES+=("$db")
done
db_url() { # name
  local base="${PG_URL%/*}"
  echo "$base/$1"
}
DB_URL="$(db_url "$DB")"
BASE_URL="$(db_url "$BASE_DB")"

# --- distributed: the broker ---------------------------------------------------------------------------------
if [[ ! -x "$TANSU" ]]; then
  log "building tansu $TANSU_VERSION from crates.io (once; cached in $TANSU_ROOT)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TANSU_ROOT" --target-dir "$CACHE/tansu-build"
fi
KAFKA_PORT="$(free_port)"
"$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --storage-engine "memory://tansu/" \
  >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)
TANSU_PID=$!
if ! wait_for_port 127.0.0.1 "$KAFKA_PORT" 60; then
  echo "tansu did not start; its log:" >&2
  cat "$WORK/tansu.log" >&2
  exit 1
fi
BROKERS="127.0.0.1:$KAFKA_PORT"

# --- distributed: the todo processes -------------------------------------------------------------------------
"$TODO" migrate --database-url "$DB_URL" >"$WORK/migrate.log" 2>&1
"$TODO" topics ensure --profile local --kafka-brokers "$BROKERS" >"$WORK/topics.log" 2>&1
"$TODO" serve --api-only --listen 127.0.0.1:0 --database-url "$DB_URL" --kafka-brokers "$BROKERS" \
  2>"$WORK/api.log" >/dev/null &
PIDS+=($!)
API_PID=$!
"$TODO" worker --listen 127.0.0.1:0 --database-url "$DB_URL" --kafka-brokers "$BROKERS" \
  2>"$WORK/worker.log" >/dev/null &
PIDS+=($!)
WORKER_PID=$!
API="$(wait_listening "$WORK/api.log" "$API_PID" 60)"
WORKER="$(wait_listening "$WORK/worker.log" "$WORKER_PID" 60)"
log "todo serve --api-only (pid $API_PID) on $API, todo worker (pid $WORKER_PID) on $WORKER, tansu (pid $TANSU_PID) on $BROKERS, database $DB"
"$LOAD" --url "http://$API" --server-pid "api=$API_PID" --server-pid "worker=$WORKER_PID" \
  --server-pid "tansu=$TANSU_PID" --metrics-url "http://$WORKER/metrics" \
  --baseline-pg "$BASE_URL" --baseline-kafka "$BROKERS" --label distributed "$@"
