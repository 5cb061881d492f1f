"""`make cluster` (scripts/cluster.py) started for real, driven through its nginx, then Ctrl-C'd.

The cluster gets its own database and key prefix on the machine's MariaDB and Redis, a free
port and a temporary var dir; the test drops the database and this run's keys afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymysql
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
UP_LINE = ">> Triton cluster is up"
ADMIN_EMAIL = "cluster-admin@example.com"
ADMIN_PASSWORD = "Cluster-admin-pass-9"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Set for this test process by tests/settings.py and pytest-django: not the cluster's.
_SCRUBBED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "CACHE_KEY_PREFIX",
    "CHANNEL_LAYER_PREFIX",
    "REALTIME_KEY_PREFIX",
    "CELERY_QUEUE",
    "PROMETHEUS_MULTIPROC_DIR",
    "CELERY_LOG_LEVEL",
    "PYTEST_CURRENT_TEST",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children of children included)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Cluster:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-200:])

    def wait_until_up(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(UP_LINE) for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"the cluster did not come up:\n{self.output}")

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def web_upstreams(self) -> set[str]:
        line = next(line for line in self.lines if line.startswith(UP_LINE))
        listed = re.search(r"web processes ([^;]+);", line)
        assert listed, line
        return {part.strip() for part in listed.group(1).split(",")}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    run_id = f"c{os.getpid()}"
    database = f"test_triton_cluster_{run_id}"
    prefix = f"test-cluster-{run_id}"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    port = _free_port()
    env.update(
        PORT=str(port),
        CLUSTER_DATABASE=database,
        CLUSTER_PREFIX=prefix,
        CLUSTER_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SUPERUSER_EMAIL=ADMIN_EMAIL,
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        LOG_FORMAT="json",
        REALTIME_SYNC_INTERVAL="0.5",
    )
    process = subprocess.Popen(
        [str(PYTHON), str(ROOT / "scripts" / "cluster.py")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Cluster(process, port)
    try:
        yield running
    finally:
        if process.poll() is None:
            for pid in _descendants(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait(10)
        connection = pymysql.connect(host="127.0.0.1", user="root", connect_timeout=5)
        try:
            connection.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            connection.close()
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        for pattern in (f"{prefix}*", f"*{prefix}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)


async def _socket_on(cluster: Cluster, token: str) -> tuple[ClientConnection, str]:
    conn = await asyncio.wait_for(connect(f"ws://127.0.0.1:{cluster.port}/ws/v1/"), 10)
    upstream = conn.response.headers["X-Triton-Upstream"]
    await conn.send(json.dumps({"type": "auth", "token": token}))
    answer = json.loads(await asyncio.wait_for(conn.recv(), 10))
    assert answer["type"] == "auth.ok", answer
    return conn, upstream


async def _next_event(conn: ClientConnection, event: str) -> dict[str, object]:
    while True:
        frame = json.loads(await asyncio.wait_for(conn.recv(), 10))
        if frame.get("type") == "event" and frame.get("event") == event:
            return frame


def _metric_total(text: str, name: str, labels: str) -> float:
    """Sum of the samples of ``name`` whose label set contains ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_cluster_balances_http_and_sockets_and_stops_cleanly(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.wait_until_up)
    upstreams = cluster.web_upstreams()
    assert len(upstreams) == 2, upstreams
    assert "ensure_superuser: cluster-admin@example.com is a superuser" in cluster.output

    async with httpx.AsyncClient(base_url=cluster.http, timeout=15) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        me = login.json()["user"]["id"]

        # One socket on each server process (least_conn sends the second to the idle one).
        sockets: dict[str, ClientConnection] = {}
        for _ in range(6):
            conn, upstream = await _socket_on(cluster, token)
            if upstream in sockets:
                await conn.close()
                continue
            sockets[upstream] = conn
            if len(sockets) == 2:
                break
        assert set(sockets) == upstreams, sockets.keys()
        for conn in sockets.values():
            await conn.send(json.dumps({"type": "subscribe", "topic": f"user.{me}", "id": "s"}))

        for conn in sockets.values():
            while json.loads(await asyncio.wait_for(conn.recv(), 10)).get("type") != "subscribed":
                pass

        # Writes through nginx until each process has served at least one; every event must
        # reach both sockets, so the socket on the other process got it across processes.
        served_by: list[str] = []
        patches = 0
        while set(served_by) != upstreams and patches < 12:
            patches += 1
            answer = await client.patch(
                f"/api/v1/users/{me}",
                json={"name": f"renamed {patches}"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
            served_by.append(answer.headers["X-Triton-Upstream"])
            for upstream, conn in sockets.items():
                event = await _next_event(conn, "user.updated")
                assert event["data"]["name"] == f"renamed {patches}", (upstream, event)
        assert set(served_by) == upstreams, served_by

        # /metrics (from loopback) sums every process's counters: the PATCHes were split
        # between the two servers, the total is all of them.
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200, metrics.text
        patched = _metric_total(
            metrics.text, "django_http_requests_total_by_method_total", 'method="PATCH"'
        )
        assert patched == patches, (patched, patches, served_by)
        for conn in sockets.values():
            await conn.close()

    # The JSON access log names the upstream of every request.
    access_log = Path(cluster.output.split("access log ", 1)[1].split(")", 1)[0])
    entries = [json.loads(line) for line in access_log.read_text().splitlines()]
    assert {e["upstream"] for e in entries if e["method"] == "PATCH"} == upstreams

    # Ctrl-C: everything the script started goes away.
    started = _descendants(cluster.process.pid)
    assert len(started) >= 5, started  # 2 servers, worker (+ pool), beat, nginx (+ worker)
    cluster.process.send_signal(signal.SIGINT)
    status = await asyncio.to_thread(cluster.process.wait, 60)
    assert status == 128 + signal.SIGINT, cluster.output
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in started):
        await asyncio.sleep(0.2)
    left = [pid for pid in started if _alive(pid)]
    assert left == [], f"still running after Ctrl-C: {left}\n{cluster.output}"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cluster.port), timeout=1).close()
