"""End-to-end fixtures: real server processes (scripts/serve.sh: uvicorn, the default, or
daphne where a configuration says TRITON_SERVER=daphne; TRITON_E2E_SERVER changes the
default) on loopback, real MariaDB and Redis, and a
``websockets`` client over real TCP.

Servers run ``backend.settings`` (not ``tests.settings``, which would point them at the
non-test database) with ``DATABASE_URL`` naming pytest-django's test database, so what a
``transaction=True`` test commits is what the servers read. Servers are started lazily, once
per distinct configuration, and live for the whole session; each test deletes this run's
history keys first so topics, offsets and presence start empty even though MariaDB reuses
ids after its per-test flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.accounts.models import User
from backend.accounts.tokens import IssuedToken, token_issue
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "scripts" / "serve.sh"
DEFAULT_SERVER = os.environ.get("TRITON_E2E_SERVER", "uvicorn")
PYTHON = ROOT / ".venv" / "bin" / "python"
LOG_DIR = Path("/tmp/triton-e2e")
# Generous: the suite starts several servers at once on a small, shared machine.
STARTUP_TIMEOUT = 60.0
RECV_TIMEOUT = 3.0

# Variables of the test process that must not leak into a server's environment.
_SCRUBBED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "REALTIME_REDIS_URLS",
    "CELERY_BROKER_URL",
    "TEST_DATABASE_URL",
    "TEST_REDIS_URL",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "backend.settings",
            "LOG_FORMAT": "text",
            "SERVE_STATIC": "false",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "e2e-test-secret-key"),
            "TRITON_SERVER": DEFAULT_SERVER,
        }
    )
    env.update(overrides)
    return env


@dataclass
class Server:
    """One server process (uvicorn or daphne, per TRITON_SERVER in its environment)."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1/"

    def log_text(self, start: int = 0) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(start)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(SERVE), "127.0.0.1", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server {self.name} exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.1)
                continue
            # The port answers; any HTTP answer (200, or 503 for a missing dependency) is "up".
            try:
                httpx.get(f"{self.http}/health", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            return
        self.stop()
        raise RuntimeError(
            f"server {self.name} not ready in {STARTUP_TIMEOUT}s:\n{self.log_text()}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # The whole session: uvicorn's worker processes (WEB_CONCURRENCY) too.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


# The configurations the suite uses: "main" (defaults), "b" (a second process like main),
# "tight" (1 s auth timeout, at most 2 subscriptions per socket, 256 KiB send queue), and
# "ttl-a"/"ttl-b" (2 s presence TTL).
STANDARD_SERVERS: dict[str, dict[str, str]] = {
    "main": {},
    "b": {},
    "tight": {
        "WS_AUTH_TIMEOUT": "1",
        "WS_MAX_SUBSCRIPTIONS": "2",
        "WS_SEND_QUEUE_BYTES": str(256 * 1024),
    },
    # The same limits under daphne: server-specific paths (realtime/transport.py) run on both.
    "tight-daphne": {
        "WS_AUTH_TIMEOUT": "1",
        "WS_MAX_SUBSCRIPTIONS": "2",
        "WS_SEND_QUEUE_BYTES": str(256 * 1024),
        "TRITON_SERVER": "daphne",
    },
    "tight-uvicorn": {
        "WS_AUTH_TIMEOUT": "1",
        "WS_MAX_SUBSCRIPTIONS": "2",
        "WS_SEND_QUEUE_BYTES": str(256 * 1024),
        "TRITON_SERVER": "uvicorn",
    },
    # A pair with a short presence TTL; "ttl-b" gets killed by its test.
    "ttl-a": {"PRESENCE_TTL": "2"},
    "ttl-b": {"PRESENCE_TTL": "2"},
}


class ServerPool:
    """Starts servers on demand, one per configuration, and stops them all at the end."""

    def __init__(self, db_name: str) -> None:
        self.db_name = db_name
        self.servers: dict[str, Server] = {}

    def mariadb_env(self, **overrides: str) -> dict[str, str]:
        redis_url = overrides.pop("REDIS_URL", settings.REDIS_URL)
        broker_url = overrides.pop("CELERY_BROKER_URL", redis_url)
        # A test's own MariaDB (tests/mariadb.py) instead of the shared test database.
        database_url = overrides.pop("DATABASE_URL", f"mysql://root@127.0.0.1:3306/{self.db_name}")
        return base_env(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            CELERY_BROKER_URL=broker_url,
            REALTIME_SYNC_INTERVAL="0.5",
            # This run's namespaces (tests/settings.py), so servers and the test process
            # share topics and groups, and no other run's.
            CHANNEL_LAYER_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            REALTIME_KEY_PREFIX=settings.REALTIME_KEY_PREFIX,
            CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
            CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
            CHANNEL_LAYER=getattr(settings, "CHANNEL_LAYER", "pubsub"),
            **overrides,
        )

    def get(self, name: str, **overrides: str) -> Server:
        """The running server of that name, started now if needed. ``overrides`` (extra
        environment) apply to names outside STANDARD_SERVERS."""
        server = self.servers.get(name)
        if server is not None and server.alive():
            return server
        server = self._spawn(name, **STANDARD_SERVERS.get(name, overrides))
        server.wait_ready()
        return server

    def warm_up(self) -> None:
        """Start every standard server at once: startup costs seconds, in parallel."""
        self.start_fresh(
            {
                name: env
                for name, env in STANDARD_SERVERS.items()
                if name not in self.servers or not self.servers[name].alive()
            }
        )

    def start_fresh(self, configs: dict[str, dict[str, str]]) -> list[Server]:
        """New processes for these names (old ones of the same name are stopped), in parallel."""
        for name in configs:
            if name in self.servers:
                self.servers[name].stop()
        spawned = [self._spawn(name, **env) for name, env in configs.items()]
        for server in spawned:
            server.wait_ready()
        return spawned

    def _spawn(self, name: str, **overrides: str) -> Server:
        port = free_port()
        server = Server(
            name=name,
            port=port,
            env=self.mariadb_env(**overrides),
            log_path=LOG_DIR / f"{os.getpid()}-{name}-{port}.log",
        )
        self.servers[name] = server
        server.spawn()
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _prune_old_logs(max_age: float = 24 * 3600) -> None:
    """Server logs of earlier runs (kept for post-mortems) go after a day."""
    if not LOG_DIR.is_dir():
        return
    cutoff = time.time() - max_age
    for path in LOG_DIR.glob("*.log"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


@pytest.fixture(scope="session")
def server_pool(django_db_setup: None) -> Iterator[ServerPool]:
    # Read after django_db_setup: the test database's name (test_triton_<run id>).
    _prune_old_logs()
    pool = ServerPool(connection.settings_dict["NAME"])
    pool.warm_up()
    yield pool
    pool.stop_all()


@pytest.fixture
def own_servers(django_db_setup: None) -> Iterator[ServerPool]:
    """A pool nothing is started in: for tests that start (and break) servers of their own
    on private services, without warming the standard ones. Stops what it started."""
    pool = ServerPool(connection.settings_dict["NAME"])
    yield pool
    pool.stop_all()


@pytest.fixture(autouse=True)
def _fresh_history() -> None:
    """Empty topic histories and presence: MariaDB reuses user/room ids after each flush.

    Only this run's keys: other runs may share Redis db 15.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.REALTIME_KEY_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def servers(
    server_pool: ServerPool, transactional_db: None, request: pytest.FixtureRequest
) -> Iterator[ServerPool]:
    """The pool, with each server's log printed when the test fails."""
    marks = {name: srv.log_size() for name, srv in server_pool.servers.items()}
    yield server_pool
    failed = any(
        getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    for name, srv in server_pool.servers.items():
        if failed:
            sys.stdout.write(f"\n----- server {name} log -----\n{srv.log_text(marks.get(name, 0))}")
        if not srv.alive():
            sys.stdout.write(f"\n----- server {name} DIED -----\n{srv.log_text()}")


@pytest.fixture
def server(servers: ServerPool) -> Server:
    """The default server: default limits, 0.5 s sync interval."""
    return servers.get("main")


# --- a Redis of the test's own ---------------------------------------------------------------
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class PrivateRedis:
    """A redis-server of this test's own, so it can be killed and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    instance = PrivateRedis()
    instance.start()
    yield instance
    instance.kill()


# --- client ----------------------------------------------------------------------------------
class WS:
    """A websockets client speaking JSON frames; every receive has a timeout."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn

    async def send(self, frame: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.conn.send(data)

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        frame = json.loads(raw)
        assert isinstance(frame, dict), frame
        return frame

    async def recv_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = RECV_TIMEOUT
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The first frame matching ``predicate``, and the frames skipped before it."""
        skipped: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no matching frame in {timeout}s; skipped {skipped}")
            frame = await self.recv(left)
            if predicate(frame):
                return frame, skipped
            skipped.append(frame)

    async def recv_event(
        self, event: str, timeout: float = RECV_TIMEOUT, topic: str | None = None
    ) -> dict[str, Any]:
        frame, _ = await self.recv_until(
            lambda f: (
                f.get("type") == "event"
                and f.get("event") == event
                and (topic is None or f.get("topic") == topic)
            ),
            timeout,
        )
        return frame

    async def recv_events_by_topic(
        self, event: str, topics: list[str], timeout: float = RECV_TIMEOUT
    ) -> dict[str, dict[str, Any]]:
        """One ``event`` frame from each of ``topics``, in whatever order they arrive.

        Order is promised within a topic only: one write's events on two topics may be
        relayed through different shards and reach the socket either way round.
        """
        wanted = set(topics)
        found: dict[str, dict[str, Any]] = {}
        deadline = asyncio.get_running_loop().time() + timeout
        while wanted - found.keys():
            left = deadline - asyncio.get_running_loop().time()
            frame, _ = await self.recv_until(
                lambda f: (
                    f.get("type") == "event"
                    and f.get("event") == event
                    and f.get("topic") in wanted - found.keys()
                ),
                max(left, 0.001),
            )
            found[frame["topic"]] = frame
        return found

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Every frame until none came for ``quiet`` seconds."""
        frames = []
        while True:
            try:
                frames.append(await self.recv(quiet))
            except TimeoutError:
                return frames

    async def nothing(self, timeout: float = 0.3) -> bool:
        try:
            frame = await self.recv(timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {frame}")

    async def close_code(self, timeout: float = RECV_TIMEOUT) -> int | None:
        """Read until the server closes; the close code it sent."""

        async def wait() -> int | None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await self.conn.recv()
            return self.conn.close_code

        return await asyncio.wait_for(wait(), timeout)

    async def ping(self) -> None:
        """The connection still answers: a pong is the next frame."""
        await self.send({"type": "ping"})
        assert await self.recv() == {"type": "pong"}

    async def auth(self, token: str) -> dict[str, Any]:
        await self.send({"type": "auth", "token": token})
        return await self.recv()

    async def subscribe(
        self, topic: str, since: str | None = None, id: str | int = "c1"
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic, "id": id}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        answer, _ = await self.recv_until(
            lambda f: f.get("type") in ("subscribed", "error") and f.get("id") == id
        )
        return answer

    async def close(self) -> None:
        await asyncio.wait_for(self.conn.close(), 5)


OpenWS = Callable[..., Any]


@pytest.fixture
async def open_ws() -> AsyncIterator[OpenWS]:
    """``await open_ws(server, token=None, origin=None)``: a connected (and authenticated) WS."""
    opened: list[WS] = []

    async def factory(
        server: Server, token: str | None = None, origin: str | None = None, **kwargs: Any
    ) -> WS:
        headers = {"Origin": origin} if origin else None
        kwargs.setdefault("max_size", 2**22)
        conn = await asyncio.wait_for(
            connect(server.ws_url, additional_headers=headers, open_timeout=5, **kwargs),
            6,
        )
        ws = WS(conn)
        opened.append(ws)
        if token is not None:
            answer = await ws.auth(token)
            assert answer["type"] == "auth.ok", answer
        return ws

    yield factory
    for ws in opened:
        with contextlib.suppress(Exception):
            await ws.close()


# --- data, committed so the servers see it ---------------------------------------------------
def _make_user(roles: list[str]) -> tuple[User, IssuedToken]:
    user = UserFactory(roles=roles)
    return user, token_issue(user=user, device_name="e2e")


async def make_user(roles: list[str] | None = None) -> tuple[User, IssuedToken]:
    return await database_sync_to_async(_make_user)(roles or ["Customer"])


def rename_sync(server: Server, user_id: int, token: str, name: str) -> None:
    """A committed change of the user's name through REST PATCH on ``server``;
    user.updated must follow."""
    answer = httpx.patch(
        f"{server.http}/api/v1/users/{user_id}",
        json={"name": name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text


async def rename(server: Server, user_id: int, token: str, name: str) -> None:
    await database_sync_to_async(rename_sync)(server, user_id, token, name)


def revoke_sync(server: Server, issued: IssuedToken) -> None:
    """Revoke a token through POST /auth/logout on ``server``."""
    answer = httpx.post(
        f"{server.http}/api/v1/auth/logout",
        headers={"Authorization": f"Bearer {issued.plain_text}"},
        timeout=10,
    )
    assert answer.status_code == 204, answer.text


async def revoke(server: Server, issued: IssuedToken) -> None:
    await database_sync_to_async(revoke_sync)(server, issued)


class Publisher(threading.Thread):
    """Commits a steady stream of renames from its own thread (its own DB connection).

    The n-th write goes to ``servers[n % len(servers)]`` (REST), or to the service here.
    """

    def __init__(
        self,
        servers: list[Server],
        user_id: int,
        token: str,
        names: list[str],
        pause: float,
        fixed_rate: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        self.servers, self.user_id, self.token = servers, user_id, token
        self.names, self.pause = names, pause
        # fixed_rate: the n-th write starts n * pause after the first (a slow write is
        # caught up on), instead of a pause after each write.
        self.fixed_rate = fixed_rate
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection as thread_connection

        try:
            started = time.monotonic()
            for n, name in enumerate(self.names):
                rename_sync(self.servers[n % len(self.servers)], self.user_id, self.token, name)
                if self.fixed_rate:
                    time.sleep(max(0.0, started + (n + 1) * self.pause - time.monotonic()))
                else:
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            thread_connection.close()


def start_server_on_redis(
    pool: ServerPool, private: PrivateRedis, name: str, **overrides: str
) -> Server:
    """A server of its own (stop it when done) on the test's private Redis."""
    env = pool.mariadb_env(REDIS_URL=private.url, CELERY_BROKER_URL=private.url, **overrides)
    port = free_port()
    server = Server(name=name, port=port, env=env, log_path=LOG_DIR / f"{name}-{port}.log")
    server.start()
    return server


# --- nginx in front of server processes (as `make cluster` runs it) --------------------------
def _cluster_script() -> Any:
    """scripts/cluster.py as a module: its nginx configuration is the one tested here."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("triton_cluster", ROOT / "scripts" / "cluster.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


@dataclass
class FrontServer(Server):
    """nginx's HTTPS address, shaped as a Server for helpers that take one (open_ws)."""

    @property
    def http(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws/v1/"


class Nginx:
    """`make cluster`'s nginx (compose/nginx/cluster.conf.template, HTTPS with a generated
    self-signed certificate) over the given servers. Clients trust ``ssl_context``."""

    def __init__(self, upstreams: list[Server], run_dir: Path) -> None:
        self.upstreams = upstreams
        self.run_dir = run_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ssl_context: ssl.SSLContext | None = None

    @property
    def http(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def as_server(self) -> Server:
        return FrontServer(name="nginx", port=self.port, env={}, log_path=self.run_dir / "none")

    def start(self) -> None:
        cluster = _cluster_script()
        (self.run_dir / "log").mkdir(parents=True, exist_ok=True)
        static_root = self.run_dir / "static"
        static_root.mkdir(exist_ok=True)
        tls_dir = self.run_dir / "tls"
        tls_dir.mkdir(exist_ok=True)
        tls = cluster.TlsFiles(cert=tls_dir / "cert.pem", key=tls_dir / "key.pem", generated=True)
        cluster.generate_certificate(tls.cert, tls.key)
        self.ssl_context = ssl.create_default_context(cafile=str(tls.cert))
        conf = cluster.render_nginx_conf(
            self.port,
            [server.port for server in self.upstreams],
            self.run_dir,
            {"STATIC_ROOT": str(static_root)},
            http_port=free_port(),
            tls=tls,
        )
        self.proc = subprocess.Popen(
            [
                cluster.ensure_nginx(),
                "-e",
                "stderr",
                "-p",
                str(self.run_dir),
                "-c",
                str(conf),
                "-g",
                "daemon off;",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.run_dir / "log" / "nginx-error.log").open("ab"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{self.http}/nginx-health", timeout=1, verify=self.ssl_context)
                if health.status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
