#!/usr/bin/env bash
# Measures how long the live stream takes to catch a reconnecting client up from the outbox.
#
#   bash tests/stream_catch_up.sh
#
# Builds `todo` and `todo-load` in release mode, starts the embedded server on a free loopback port with a throw-away
# SQLite file, writes 20,000 to 30,000 events with a 5 s create-only load (16 clients, 16 users), then opens
# `/api/v1/events/stream` as one of those users with `Last-Event-ID` 100, 1,000 and 10,000 rows before the end of the
# outbox (twice each, the largest first and last) and prints how long the response took until its last caught-up
# event. Stops and removes what it started when it exits.
#
# Environment: CARGO_TARGET_DIR (default: ~/.cache/todo-target).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/todo-target}"
(cd "$ROOT" && cargo build --release --locked -p todo-bin --bin todo -p todo-e2e --bin todo-load)
TODO="$CARGO_TARGET_DIR/release/todo"
LOAD="$CARGO_TARGET_DIR/release/todo-load"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/todo-catch-up.XXXXXX")"
SERVER=""
cleanup() {
  if [[ -n "$SERVER" ]]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

SECRET="catch-up-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$WORK" && exec "$TODO" serve --listen "127.0.0.1:$PORT" --database-url sqlite://todo.db --jwt-secret "$SECRET") \
  >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do
  grep -q "listening on" "$WORK/serve.log" && break
  sleep 0.1
done
"$LOAD" --url "http://127.0.0.1:$PORT" --jwt-secret "$SECRET" --concurrency 16 --users 16 --duration 5 \
  --mix create=100 | grep "load phase"
sleep 1 # the consumers' last batches

python3 - "$WORK/todo.db" "$PORT" "$TODO" "$SECRET" <<'PY'
import http.client, sqlite3, subprocess, sys, time, uuid

path, port, todo, secret = sys.argv[1:]
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
user = str(uuid.UUID(bytes=db.execute("SELECT owner FROM tasks LIMIT 1").fetchone()[0]))
token = subprocess.run([todo, "token", "--user", user, "--jwt-secret", secret],
                       capture_output=True, text=True, check=True).stdout.split()[-1]
end = db.execute("SELECT MAX(seq) FROM outbox").fetchone()[0]
print(f"outbox: {end} rows; resuming as user {user}")
for back in [10_000, 1_000, 100, 100, 1_000, 10_000]:
    after = end - back
    expected = db.execute("SELECT COUNT(*) FROM outbox WHERE seq > ? AND key = ?",
                          (after, user.encode())).fetchone()[0]
    conn = http.client.HTTPConnection("127.0.0.1", int(port))
    start = time.perf_counter()
    conn.request("GET", "/api/v1/events/stream",
                 headers={"Authorization": f"Bearer {token}", "Last-Event-ID": str(after)})
    res = conn.getresponse()
    assert res.status == 200, res.status
    got = 0
    while got < expected:
        line = res.fp.readline()
        assert not line.startswith(b"event: reset"), "reset instead of a catch-up"
        got += line.startswith(b"event: task.")
    took = time.perf_counter() - start
    print(f"{back:>6} rows back: {expected:>4} events of the user caught up in {1000 * took:6.1f} ms")
    conn.close()
PY
