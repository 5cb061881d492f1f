"""`make cluster` (scripts/cluster.py) started for real, driven through its nginx, then Ctrl-C'd.

The cluster gets its own database and key prefix on the machine's MariaDB and Redis, free
ports and a temporary var dir; the tests drop the database and this run's keys afterwards. One
cluster serves both tests (a start costs a minute of migrations): the TLS checks first, then the
balancing test, which ends by stopping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import ssl
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
    def __init__(
        self, process: subprocess.Popen[str], port: int, http_port: int, var_dir: Path
    ) -> None:
        self.process = process
        self.port = port
        self.http_port = http_port
        # The generated self-signed certificate is its own trust anchor: clients verify with it.
        self.certificate = var_dir / "tls" / "cert.pem"
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
    def https(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def wss(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws/v1/"

    def tls(self) -> ssl.SSLContext:
        """Verifies the server against the cluster's certificate (hostname included)."""
        return ssl.create_default_context(cafile=self.certificate)

    def web_upstreams(self) -> set[str]:
        line = next(line for line in self.lines if line.startswith(UP_LINE))
        listed = re.search(r"web processes ([^;]+);", line)
        assert listed, line
        return {part.strip() for part in listed.group(1).split(",")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_id = f"c{os.getpid()}"
    database = f"test_triton_cluster_{run_id}"
    prefix = f"test-cluster-{run_id}"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    port, http_port = _free_port(), _free_port()
    var_dir = tmp_path_factory.mktemp("cluster") / "var"
    env.update(
        PORT=str(port),
        HTTP_PORT=str(http_port),
        CLUSTER_DATABASE=database,
        CLUSTER_PREFIX=prefix,
        CLUSTER_VAR_DIR=str(var_dir),
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
    running = Cluster(process, port, http_port, var_dir)
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
    conn = await asyncio.wait_for(connect(cluster.wss, ssl=cluster.tls()), 10)
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


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) with a listener on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


async def test_cluster_serves_https_and_wss_only(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.wait_until_up)
    assert f"Triton cluster is up: {cluster.https}" in cluster.output
    assert cluster.certificate.is_file(), cluster.output
    tls = cluster.tls()

    # The certificate names both 127.0.0.1 and localhost, and nothing else trusts it.
    with (
        socket.create_connection(("127.0.0.1", cluster.port), timeout=10) as raw,
        tls.wrap_socket(raw, server_hostname="localhost") as wrapped,
    ):
        assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
    async with httpx.AsyncClient(timeout=15) as untrusting:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.get(f"{cluster.https}/api/v1/health")

    async with httpx.AsyncClient(base_url=cluster.https, verify=tls, timeout=15) as client:
        login = await client.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        me = await client.get("/api/v1/auth/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == ADMIN_EMAIL
        assert me.headers["Strict-Transport-Security"] == "max-age=300"
        user_id = me.json()["id"]

        # nginx sets X-Forwarded-Proto itself: a client's "http" does not turn HTTPS off.
        claimed = await client.get("/api/v1/auth/me", headers={**auth, "X-Forwarded-Proto": "http"})
        assert claimed.status_code == 200, claimed.text

        # The admin site over HTTPS: its __Host- cookies, and a form post whose Origin (with
        # the port) must match the host Django sees behind nginx (CSRF).
        page = await client.get("/admin/login/")
        assert page.status_code == 200, page.text
        csrf = client.cookies["__Host-csrftoken"]
        admin = await client.post(
            "/admin/login/",
            data={
                "username": ADMIN_EMAIL,
                "password": ADMIN_PASSWORD,
                "csrfmiddlewaretoken": csrf,
                "next": "/admin/",
            },
            headers={"Origin": cluster.https, "Referer": f"{cluster.https}/admin/login/"},
        )
        assert admin.status_code == 302, admin.text[:500]
        assert admin.headers["Location"] == "/admin/"

        # An event caused by a REST write arrives over wss:// (opened as a page of the site
        # would: its Origin names the HTTPS port).
        async with connect(cluster.wss, ssl=tls, origin=cluster.https, open_timeout=10) as conn:
            await conn.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(await asyncio.wait_for(conn.recv(), 10))["type"] == "auth.ok"
            topic = f"user.{user_id}"
            await conn.send(json.dumps({"type": "subscribe", "topic": topic, "id": "s"}))
            while json.loads(await asyncio.wait_for(conn.recv(), 10)).get("type") != "subscribed":
                pass
            patched = await client.patch(
                f"/api/v1/users/{user_id}", json={"name": "over TLS"}, headers=auth
            )
            assert patched.status_code == 200, patched.text
            event = await _next_event(conn, "user.updated")
            assert event["data"]["name"] == "over TLS", event

    async with httpx.AsyncClient(timeout=15) as plain:
        # The plain-HTTP port redirects to HTTPS (and proxies nothing, whatever the headers).
        for headers in ({}, {"X-Forwarded-Proto": "https"}):
            answer = await plain.get(
                f"http://127.0.0.1:{cluster.http_port}/api/v1/auth/me?x=1", headers=headers
            )
            assert answer.status_code == 301, answer.text
            assert answer.headers["Location"] == f"{cluster.https}/api/v1/auth/me?x=1"
            assert "Strict-Transport-Security" not in answer.headers
        # Plain HTTP on the HTTPS port is refused by nginx.
        refused = await plain.get(f"http://127.0.0.1:{cluster.port}/api/v1/auth/me")
        assert refused.status_code == 400

        # The server processes listen on loopback only, and believe X-Forwarded-Proto only from
        # nginx's address: a local client that goes around nginx cannot claim HTTPS.
        for upstream in cluster.web_upstreams():
            web_port = int(upstream.rsplit(":", 1)[1])
            assert _listening_addresses(web_port) == {"0100007F"}, upstream  # 127.0.0.1
            direct = await plain.get(
                f"http://{upstream}/api/v1/auth/me",
                headers={"X-Forwarded-Proto": "https", "Authorization": f"Bearer {token}"},
            )
            assert direct.status_code == 301, (upstream, direct.status_code, direct.text)
            assert direct.headers["Location"] == f"https://{upstream}/api/v1/auth/me"
            assert "Strict-Transport-Security" not in direct.headers


async def test_cluster_balances_http_and_sockets_and_stops_cleanly(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.wait_until_up)
    upstreams = cluster.web_upstreams()
    assert len(upstreams) == 2, upstreams
    assert "ensure_superuser: cluster-admin@example.com is a superuser" in cluster.output

    async with httpx.AsyncClient(
        base_url=cluster.https, verify=cluster.tls(), timeout=15
    ) as client:
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

        # PATCHes counted so far (the TLS test, on the same cluster, made one).
        before = await client.get("/metrics")
        assert before.status_code == 200, before.text
        patched_before = _metric_total(
            before.text, "django_http_requests_total_by_method_total", 'method="PATCH"'
        )

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
        assert patched - patched_before == patches, (patched, patched_before, patches, served_by)
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
