# Shared by the probe scripts: a work folder, an `autopack serve` on SQLite, HTTP helpers.
# Source it after `set -euo pipefail`; it sets $work, $db, $base, $run_id and an EXIT trap.

AUTOPACK=${AUTOPACK:-autopack}
work=${AUTOPACK_PROBE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/autopack-probe.XXXXXX")}
mkdir -p "$work"
db="$work/autopack.db"
export AUTOPACK_DATABASE_URL="sqlite:///$db"
export AUTOPACK_RUNS_DIR="$work/.autonomous_runs"
run_id="probe-$(date +%s)-$$"
server_pid=""

cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "${AUTOPACK_PROBE_KEEP:-0}" != "1" ] && [ -z "${AUTOPACK_PROBE_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

fail() { echo "PROBE FAILED: $*" >&2; [ -f "$work/server.log" ] && tail -n 20 "$work/server.log" >&2; exit 1; }
ok() { echo "  ok  $*"; }
expect() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; ok "$1 = $3"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
echo "probe: server on $base, work folder $work"
"$AUTOPACK" serve --port "$port" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "server exited"
  sleep 0.1
done
curl -fsS "$base/health" >/dev/null || fail "server did not answer /health"
ok "server is up"

# call METHOD PATH [JSON] -> prints the body, sets $code
call() {
  local out; out=$(mktemp)
  if [ $# -ge 3 ]; then
    code=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" -H 'content-type: application/json' --data "$3" "$base$2")
  else
    code=$(curl -sS -o "$out" -w '%{http_code}' -X "$1" "$base$2")
  fi
  body=$(cat "$out"); rm -f "$out"
}


# same LABEL A B: like expect, without printing the (long) values
same() { [ "$2" = "$3" ] || fail "$1: they differ"; ok "$1"; }
