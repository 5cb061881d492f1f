"""A private MariaDB server with binary logs, for backup and point-in-time recovery tests.

``private_mariadb`` (session) initialises a data directory in a temporary folder and runs its
own ``mariadbd --log-bin`` on a free loopback port: restores drop and recreate databases, which
must never happen on the machine's shared server (port 3306).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

STARTUP_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if path:
            return path
    pytest.skip(f"{names[0]} is not installed (scripts/ensure-services.sh installs it)")


@dataclass
class PrivateMariaDB:
    port: int
    datadir: Path
    proc: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", database=database, autocommit=True
        )

    def execute(self, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        with self.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets open and answers nothing (a hung host)."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def migrated_database(self, name: str, env: dict[str, str]) -> str:
        """A new database ``name`` with Triton's schema (``manage.py migrate`` run with
        ``env`` pointed at it); its DATABASE_URL."""
        self.execute(
            f"CREATE DATABASE IF NOT EXISTS `{name}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        url = self.url(name)
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "manage.py",
                "migrate",
                "--noinput",
                "-v",
                "0",
            ],
            cwd=ROOT,
            env={**env, "DATABASE_URL": url},
            check=True,
            capture_output=True,
            timeout=600,
        )
        return url


@pytest.fixture(scope="session")
def private_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMariaDB]:
    mariadbd = _binary("mariadbd", "mysqld")
    install_db = _binary("mariadb-install-db", "mysql_install_db")
    root = tmp_path_factory.mktemp("mariadb")
    datadir = root / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    log_path = root / "mariadbd.log"
    proc = subprocess.Popen(
        [
            mariadbd,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={root / 'mariadbd.sock'}",
            f"--pid-file={root / 'mariadbd.pid'}",
            f"--log-error={log_path}",
            f"--log-bin={datadir / 'binlog'}",
            "--server-id=1",
            # As in compose: row-based events, the harder case for --database filtering.
            "--binlog-format=ROW",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            *user,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = PrivateMariaDB(port=port, datadir=datadir, proc=proc)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited:\n{log_path.read_text()}")
        try:
            server.execute("SELECT 1")
            break
        # Not pymysql.err.OperationalError: under the suite pymysql's error classes may be other
        # objects than this module's (imported again as MySQLdb), so the class does not match.
        except Exception:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"mariadbd not ready:\n{log_path.read_text()}") from None
            time.sleep(0.1)
    try:
        yield server
    finally:
        proc.send_signal(signal.SIGCONT)  # a test that froze it and failed
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
