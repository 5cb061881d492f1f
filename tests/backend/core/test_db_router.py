"""The read-replica router against a real MariaDB primary and replica on loopback.

The test starts its own two mariadbd processes (never the machine's server on 3306): a primary
with binary logs and a replica replicating from it, in temporary directories on free ports.
Django runs in a subprocess with DATABASE_URL / DATABASE_REPLICA_URLS pointing at them, so the
settings lines are exercised too. A row written on the replica only (binary log off) tells
which server answered a read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from backend.core import db_router

ROOT = Path(__file__).resolve().parents[3]
PYTHON = ROOT / ".venv" / "bin" / "python"
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"

pytestmark = pytest.mark.timeout(240)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MariaDB:
    name: str
    datadir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def connect(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            database=database,
            connect_timeout=5,
            autocommit=True,
            cursorclass=pymysql.cursors.DictCursor,
        )

    def sql(self, statement: str, database: str | None = None) -> list[dict[str, Any]]:
        conn = self.connect(database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def start(self, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.datadir}/mysqld.sock",
                f"--pid-file={self.datadir}/mysqld.pid",
                f"--log-error={self.datadir}/error.log",
                "--innodb-buffer-pool-size=32M",
                "--performance-schema=OFF",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.error_log()}")
            try:
                self.connect().close()
                return
            except pymysql.MySQLError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer: {self.error_log()}")

    def error_log(self) -> str:
        path = self.datadir / "error.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def replication() -> Iterator[tuple[MariaDB, MariaDB]]:
    if not Path(MARIADBD).exists():
        pytest.skip("mariadbd is not installed (scripts/ensure-services.sh installs it)")
    # Short paths: Unix socket names are limited to ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="trdb-"))
    primary = MariaDB("primary", base / "primary", _free_port())
    replica = MariaDB("replica", base / "replica", _free_port())
    # One after the other: two bootstraps at once collide on temporary table names in /tmp.
    for server in (primary, replica):
        install = subprocess.run(
            [
                INSTALL_DB,
                "--no-defaults",
                "--user=root",
                f"--datadir={server.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
        assert install.returncode == 0, install.stderr
    try:
        primary.start("--server-id=1", "--log-bin=binlog", "--binlog-format=ROW")
        replica.start("--server-id=2", "--read-only", "--relay-log=relay")
        replica.sql(
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, "
            "MASTER_USER='root', MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1"
        )
        replica.sql("START SLAVE")
        primary.sql("CREATE DATABASE app CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


def _wait_replicated(replica: MariaDB, statement: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if replica.sql(statement, "app"):
                return
        except pymysql.MySQLError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not replicated in {timeout}s: {statement}")


# The Django side, run with the cluster's settings (backend.settings) in a subprocess.
PROBE = r"""
import json, sys, time
import django
django.setup()
from django.contrib.contenttypes.models import ContentType
from backend.core import db_router

phase = sys.argv[1]
out = {}
if True:
    started = time.monotonic()
    with db_router.primary_pin_scope():
        out["read_db"] = ContentType.objects.all().db
        out["replica_row_seen"] = ContentType.objects.filter(app_label="replica_only").exists()
        out["read_seconds"] = time.monotonic() - started
        if phase == "route":
            ContentType.objects.create(app_label="written", model="in-scope")
            out["after_write_db"] = ContentType.objects.all().db
            out["replica_row_seen_after_write"] = ContentType.objects.filter(
                app_label="replica_only"
            ).exists()
            out["own_write_seen"] = ContentType.objects.filter(app_label="written").exists()
    with db_router.primary_pin_scope():
        out["next_scope_db"] = ContentType.objects.all().db
print("PROBE " + json.dumps(out))
"""


def _probe(primary: MariaDB, replica: MariaDB, phase: str) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTEST_CURRENT_TEST")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings",
        DATABASE_URL=f"mysql://root@127.0.0.1:{primary.port}/app",
        DATABASE_REPLICA_URLS=f"mysql://root@127.0.0.1:{replica.port}/app",
        REPLICA_MAX_LAG="5",
        REPLICA_CONNECT_TIMEOUT="1",
        LOG_FORMAT="text",
    )
    result = subprocess.run(
        [str(PYTHON), "-c", PROBE, phase],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE "))


# About 70 s on the shared 2-core machine (two bootstraps, five Django start-ups): make soak.
@pytest.mark.soak
def test_reads_go_to_the_replica_writes_pin_to_the_primary_and_dead_replicas_are_skipped(
    replication: tuple[MariaDB, MariaDB],
) -> None:
    primary, replica = replication
    # contenttypes' table, created on the primary only (a full migrate would cost a minute).
    primary.sql(
        "CREATE TABLE django_content_type (id INT AUTO_INCREMENT PRIMARY KEY,"
        " app_label VARCHAR(100) NOT NULL, model VARCHAR(100) NOT NULL,"
        " UNIQUE KEY (app_label, model))",
        "app",
    )
    _wait_replicated(replica, "SHOW TABLES LIKE 'django_content_type'")
    # A row only the replica has: a read that sees it was answered by the replica. A far
    # id, so the primary's rows replicate without a duplicate key.
    conn = replica.connect("app")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_log_bin = 0")
            cursor.execute(
                "INSERT INTO django_content_type (id, app_label, model)"
                " VALUES (1000000, 'replica_only', 'x')"
            )
    finally:
        conn.close()

    routed = _probe(primary, replica, "route")
    assert routed["read_db"] == "replica_0"
    assert routed["replica_row_seen"] is True
    # The first write pins the rest of the scope to the primary: it reads its own write and
    # no longer sees the replica's row.
    assert routed["after_write_db"] == "default"
    assert routed["own_write_seen"] is True
    assert routed["replica_row_seen_after_write"] is False
    # The next request or job starts unpinned.
    assert routed["next_scope_db"] == "replica_0"
    assert primary.sql("SELECT model FROM django_content_type WHERE app_label='written'", "app")

    # Replication broken (SQL thread stopped: Seconds_Behind_Master is NULL): primary.
    replica.sql("STOP SLAVE SQL_THREAD")
    try:
        broken = _probe(primary, replica, "read")
    finally:
        replica.sql("START SLAVE SQL_THREAD")
    assert broken["read_db"] == "default"
    assert broken["replica_row_seen"] is False

    # A replica that accepts TCP but answers nothing (SIGSTOP): skipped after the connect
    # timeout instead of hanging the read.
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        stopped = _probe(primary, replica, "read")
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)
    assert stopped["read_db"] == "default"
    assert stopped["replica_row_seen"] is False
    assert stopped["read_seconds"] < 5, stopped

    # Back and healthy: reads return to it.
    _wait_replicated(replica, "SELECT 1 FROM django_content_type WHERE app_label='written'")
    recovered = _probe(primary, replica, "read")
    assert recovered["read_db"] == "replica_0"


# --- scopes, without replicas ---------------------------------------------------------------


def test_request_middleware_gives_each_request_a_fresh_scope() -> None:
    seen: list[bool] = []

    def view(request: object) -> Any:
        seen.append(db_router.is_pinned())
        db_router.pin_to_primary()
        seen.append(db_router.is_pinned())
        return "response"

    middleware = db_router.RequestPinMiddleware(view)
    assert middleware(object()) == "response"
    assert middleware(object()) == "response"
    assert seen == [False, True, False, True]
    assert db_router.is_pinned() is False


async def test_async_request_middleware_scope() -> None:
    async def view(request: object) -> Any:
        db_router.pin_to_primary()
        return db_router.is_pinned()

    middleware = db_router.RequestPinMiddleware(view)
    assert await middleware(object()) is True
    assert db_router.is_pinned() is False


def test_celery_signals_give_each_job_a_fresh_scope() -> None:
    from celery import signals

    import workers.celery  # noqa: F401 - connects the signals

    with db_router.primary_pin_scope():
        db_router.pin_to_primary()
        signals.task_prerun.send(sender=None, task_id="job-1", task=None)
        assert db_router.is_pinned() is False  # the job starts unpinned
        db_router.pin_to_primary()
        assert db_router.is_pinned() is True
        signals.task_postrun.send(sender=None, task_id="job-1", task=None)
        assert db_router.is_pinned() is True  # the caller's own scope again


def test_router_sends_writes_and_transactions_to_the_primary() -> None:
    router = db_router.PrimaryReplicaRouter()
    with db_router.primary_pin_scope():
        assert router.db_for_read(object) == "default"  # no replicas configured here
        assert router.db_for_write(object) == "default"
        assert db_router.is_pinned()
    assert router.allow_migrate("default", "accounts") is True
    assert router.allow_migrate("replica_0", "accounts") is False
