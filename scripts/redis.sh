# Sourced by test.sh: make sure redis-server is installed and a Redis answers at
# REDIS_HOST:REDIS_PORT (default 127.0.0.1:6379). When none does, start a private one with no
# persistence; it is stopped when the calling script exits.
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

redis_answers() {
  .venv/bin/python - "$REDIS_HOST" "$REDIS_PORT" <<'PY' 2>/dev/null
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
}

# The binary is needed even when a Redis answers: the topology tests start private servers
# (a Cluster, a Sentinel setup) of their own.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is not installed: installing it (apt-get)."
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

if ! redis_answers; then
  mkdir -p .redis-data
  echo "Starting a private redis-server on $REDIS_HOST:$REDIS_PORT (data in .redis-data, not persisted)."
  redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$ROOT/.redis-data" --daemonize yes --pidfile "$ROOT/.redis-data/redis.pid" \
    --logfile "$ROOT/.redis-data/redis.log"
  trap 'kill "$(cat "$ROOT/.redis-data/redis.pid")" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
  redis_answers || { echo "error: redis-server did not start; see .redis-data/redis.log" >&2; exit 1; }
fi
