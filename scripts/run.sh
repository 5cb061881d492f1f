#!/usr/bin/env bash
# `make run`: the whole system on one machine, no services to install.
#
# The work is done by scripts/supervise.py (see its docstring): embedded valkey with an
# append-only file under var/, migrate, ensure_superuser, collectstatic, a Celery worker and
# beat, daphne on HOST:PORT (default 127.0.0.1:8000); every child that dies is restarted with
# backoff, and Ctrl-C stops them all. docs/operations.md describes it for users.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "!! no virtualenv at .venv: run 'make run' (it installs first) or 'make install'" >&2
  exit 1
fi

# Invoice PDFs need wkhtmltopdf; the commerce module ships the script that installs it.
if ! command -v wkhtmltopdf >/dev/null 2>&1 && [ -x "$ROOT/scripts/ensure-wkhtmltopdf.sh" ]; then
  "$ROOT/scripts/ensure-wkhtmltopdf.sh" || echo "!! wkhtmltopdf is missing: invoice PDFs will fail" >&2
fi

exec "$PY" "$ROOT/scripts/supervise.py"
