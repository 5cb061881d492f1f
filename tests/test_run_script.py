"""scripts/run.sh (what `make run` executes) started for real, then stopped.

Each test runs the script with a fresh TRITON_VAR_DIR (its own SQLite file, media, socket
and logs) on a free port, talks HTTP to it, sends SIGTERM and checks nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e

# Set by tests/settings.py or pytest-django for this process; the script must not inherit them.
_SCRUBBED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "TRITON_EMBEDDED_REDIS",
    "TRITON_VALKEY_SERVER",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_until_up(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(">> Triton is up") for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"run.sh did not come up:\n{self.output}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, dict[str, object]]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def post(self, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            self.url(path),
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def children(self) -> list[int]:
        result = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in result.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


@pytest.fixture
def start_script(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(**extra_env: str) -> Running:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        port = _free_port()
        env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            TRITON_VAR_DIR=str(tmp_path / "var"),
            LOG_FORMAT="text",
            **extra_env,
        )
        process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        running = Running(process, port)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(10)


def _stop(running: Running) -> list[int]:
    children = running.children()
    running.process.send_signal(signal.SIGTERM)
    running.process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    return [pid for pid in children if _alive(pid)]


def test_run_script_with_embedded_valkey(
    start_script: Callable[..., Running], tmp_path: Path
) -> None:
    running = start_script(
        DJANGO_SUPERUSER_EMAIL="root@example.com", DJANGO_SUPERUSER_PASSWORD="Super-user-pass-1"
    )
    running.wait_until_up()
    assert ">> starting embedded valkey-server on unix://" in running.output
    assert ">> starting celery worker with beat" in running.output
    assert "ensure_superuser: root@example.com is a superuser" in running.output
    assert (tmp_path / "var" / "triton.sqlite3").exists()

    status, body = running.get("/api/v1/health")
    assert status == 200, body
    checks = {k: v for k, v in body["checks"].items() if k != "workers"}
    assert checks == dict.fromkeys(["database", "cache", "disk", "channel_layer", "broker"], "ok")
    # The worker the script started answers the health check's ping once it is up.
    deadline = time.monotonic() + 30
    while body["checks"]["workers"] != "ok" and time.monotonic() < deadline:
        time.sleep(0.5)
        status, body = running.get("/api/v1/health")
    assert body["checks"]["workers"] == "ok", body

    status, body = running.post(
        "/api/v1/auth/register",
        {"name": "Run Script", "email": "run@example.com", "password": "Run-script-pass-77"},
    )
    assert status == 201, body
    assert body["user"]["roles"] == ["Customer"]
    status, body = running.post(
        "/api/v1/auth/login", {"email": "root@example.com", "password": "Super-user-pass-1"}
    )
    assert status == 200, body
    assert "Admin" in body["user"]["roles"]

    sockets = list((tmp_path / "var" / "run").glob("valkey-*.sock"))
    assert len(sockets) == 1
    left = _stop(running)
    assert left == [], f"children still running: {left}\n{running.output}"
    assert running.output.rstrip().endswith(">> stopping")
    assert not sockets[0].exists()


def test_run_script_falls_back_when_valkey_cannot_start(
    start_script: Callable[..., Running],
) -> None:
    running = start_script(TRITON_VALKEY_SERVER="/bin/false")
    running.wait_until_up()
    assert "!! falling back to the in-process defaults" in running.output
    assert ">> no broker: background jobs run in-process" in running.output
    status, body = running.get("/health")
    assert status == 200, body
    assert body["checks"]["broker"] == "ok"
    assert _stop(running) == []


def test_run_script_without_embedded_redis(start_script: Callable[..., Running]) -> None:
    running = start_script(TRITON_EMBEDDED_REDIS="0")
    running.wait_until_up()
    assert "valkey" not in running.output
    status, _ = running.get("/api/v1/health")
    assert status == 200
    assert _stop(running) == []
