#!/usr/bin/env bash
# Makes sure what the tests talk to is installed and running: MariaDB and Redis.
# Installs Debian packages when missing (needs root, as on CI), starts stopped services,
# and waits until each answers. Idempotent; safe to run before every test run.
set -euo pipefail

log() { echo ">> $*"; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "!! missing packages ($*) and not root: install them and retry" >&2
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_for() {
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "!! $what did not come up" >&2
  exit 1
}

# --- MariaDB --------------------------------------------------------------------------------
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server mariadb-client
if ! mysqladmin -uroot -h127.0.0.1 --connect-timeout=2 ping >/dev/null 2>&1; then
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for "MariaDB" mysqladmin -uroot -h127.0.0.1 --connect-timeout=2 ping
fi
# The tests connect as root over TCP without a password (the machine's convention).
mysql -uroot -h127.0.0.1 -e "SELECT 1" >/dev/null

# --- Redis ----------------------------------------------------------------------------------
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for "Redis" redis-cli -h 127.0.0.1 -p 6379 ping
fi
log "MariaDB and Redis are up"

# --- Invoice PDFs (wkhtmltopdf; pdftotext for the tests) ----------------------------------
"$(dirname "$0")/ensure-wkhtmltopdf.sh"
