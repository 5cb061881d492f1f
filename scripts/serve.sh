#!/usr/bin/env bash
# The ASGI server in the foreground: `scripts/serve.sh HOST PORT` (exec, so its pid is the
# server's). TRITON_SERVER picks it: uvicorn (default; uvloop, httptools, websockets-sansio)
# or daphne. Both serve backend.asgi:application; see docs/benchmarks.md for the numbers.
# WEB_CONCURRENCY (uvicorn only, default 1) runs that many server processes on the one port:
# a Python process uses one core at a time, so a machine serving only Triton runs one per core.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST="${1:-${HOST:-127.0.0.1}}"
PORT="${2:-${PORT:-8000}}"
SERVER="${TRITON_SERVER:-uvicorn}"
WORKERS="${WEB_CONCURRENCY:-1}"
# The project's .venv here; the image installs its environment elsewhere (compose/Dockerfile).
BIN="${TRITON_VENV_BIN:-$ROOT/.venv/bin}"
cd "$ROOT"

case "$SERVER" in
  uvicorn)
    if [ "$WORKERS" -gt 1 ] && [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
      # /metrics must add up every process's counters (prometheus_client's multiprocess
      # mode), from a directory that starts empty.
      PROMETHEUS_MULTIPROC_DIR="$(mktemp -d -t triton-metrics.XXXXXX)"
      export PROMETHEUS_MULTIPROC_DIR
    fi
    # No per-message deflate: an event is framed once and the same bytes go to every socket
    # (realtime/transport.py); compressing per socket would cost more CPU than it saves.
    # No proxy headers: the app reads X-Forwarded-For itself (NUM_PROXIES), like under daphne.
    # Warnings only: uvicorn logs two lines per websocket at INFO (daphne's are off too).
    # The websocket protocol is uvicorn's websockets-sansio with leaner per-connection state
    # (realtime/transport.py: about 6 KiB less per idle socket, same wire behaviour).
    # Idle keep-alive connections stay 75 s (nginx's default), not uvicorn's 5: a client that
    # reuses a connection just as a busy server closes it gets "connection closed without
    # response" (seen under the 200-user locust load, for a chat user's occasional GET).
    exec "$BIN/uvicorn" backend.asgi:application \
      --host "$HOST" --port "$PORT" \
      --loop uvloop --http httptools \
      --ws realtime.transport:LeanWebSocketsSansIOProtocol --ws-per-message-deflate false \
      --lifespan off --no-access-log --log-level warning --no-proxy-headers --no-server-header \
      --timeout-keep-alive 75 --timeout-graceful-shutdown 5 --workers "$WORKERS"
    ;;
  daphne)
    if [ "$WORKERS" -ne 1 ]; then
      echo "!! daphne runs one process: start several behind a proxy (docs/scaling.md)" >&2
      exit 2
    fi
    exec "$BIN/daphne" -b "$HOST" -p "$PORT" backend.asgi:application
    ;;
  *)
    echo "!! TRITON_SERVER must be uvicorn or daphne, not '$SERVER'" >&2
    exit 2
    ;;
esac
