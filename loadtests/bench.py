"""`make bench`: measure realtime fan-out and REST latency on this machine.

Starts real daphne processes against a scratch MariaDB database and Redis database 14,
connects real websocket clients over loopback, publishes through ``realtime.publish`` (the
same path services use: outbox row, history append, one group_send), and writes the numbers
to ``bench-results/latest.json`` and ``bench-results/latest.md``.

Scenarios (each bounded in time):
* fan-out: S sockets subscribed to one topic, E events ~250 bytes sent 20 ms apart; with the
  channels-redis pub/sub layer (the default) and with the core layer, for comparison;
* scale-out: the same load split across two server processes sharing Redis;
* REST: GET /api/v1/auth/me (token check + user + roles) at a fixed concurrency.

Options: --sockets, --events, --quick (smaller numbers, for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
RUN_ID = uuid.uuid4().hex[:6]
DB_NAME = "triton_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bench_env(layer: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SECRET_KEY", f"bench-only-secret-key-{RUN_ID}")
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings",
        DATABASE_URL=f"mysql://root@127.0.0.1:3306/{DB_NAME}",
        REDIS_URL=REDIS_URL,
        CELERY_BROKER_URL=REDIS_URL,
        CHANNEL_LAYER=layer,
        CHANNEL_LAYER_PREFIX=f"bench-{RUN_ID}-{layer}",
        REALTIME_KEY_PREFIX=f"bench-{RUN_ID}:rt",
        CACHE_KEY_PREFIX=f"bench-{RUN_ID}",
        LOG_LEVEL="WARNING",
        SERVE_STATIC="false",
        WS_RATE_BURST="1000",
        WS_SEND_QUEUE_BYTES=str(64 * 1024 * 1024),
    )
    return env


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = RESULTS / f"server-{self.port}.log"
        self.log_file = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "backend.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with closing(socket.socket()) as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; see {self.log_path}")
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, keep_log: bool = False) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


def prepare_database() -> str:
    """A fresh scratch database, migrated; returns an Admin's bearer token."""
    import pymysql

    connection = pymysql.connect(host="127.0.0.1", user="root", password="")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        cursor.execute(f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4")
    connection.close()
    env = bench_env("pubsub")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    os.environ.update(env)
    import django

    django.setup()
    from backend.accounts.models import User
    from backend.accounts.services import superuser_ensure
    from backend.accounts.tokens import token_issue

    user = superuser_ensure(email="bench@example.com", password="bench-password-1")
    assert isinstance(user, User)
    return token_issue(user=user, device_name="bench").plain_text


@dataclass
class FanoutResult:
    scenario: str
    layer: str
    servers: int
    sockets: int
    events: int
    deliveries: int
    expected: int
    deliveries_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    server_rss_per_socket_kib: float
    server_cpu_us_per_delivery: float


async def open_subscriber(url: str, token: str, topic: str) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(url, max_size=None, ping_interval=None, open_timeout=20)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await ws.recv())["type"] == "auth.ok"
    await ws.send(json.dumps({"type": "subscribe", "topic": topic}))
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "subscribed":
            return ws


async def fanout(
    layer: str, servers_count: int, sockets: int, events: int, token: str
) -> FanoutResult:
    from realtime.publish import publish

    topic = "dashboard"
    latencies: list[float] = []
    servers = [Server(bench_env(layer)) for _ in range(servers_count)]
    try:
        for server in servers:
            server.wait_ready()
        rss_before = sum(server.rss_kib() for server in servers)
        log(f"{layer}: connecting {sockets} sockets to {servers_count} server(s)")
        clients = []
        for start in range(0, sockets, 100):
            batch = [
                open_subscriber(
                    f"ws://127.0.0.1:{servers[i % servers_count].port}/ws/v1/", token, topic
                )
                for i in range(start, min(start + 100, sockets))
            ]
            clients.extend(await asyncio.gather(*batch))
        rss_after = sum(server.rss_kib() for server in servers)
        last_arrival = [0.0]

        async def reader(ws: Any) -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "event":
                    now = time.time()
                    latencies.append(now - frame["data"]["sent_at"])
                    last_arrival[0] = now

        readers = [asyncio.create_task(reader(ws)) for ws in clients]
        cpu_before = sum(server.cpu_seconds() for server in servers)
        log(f"{layer}: publishing {events} events, 20 ms apart")
        first_send = time.time()
        padding = "x" * 180
        for n in range(events):
            await asyncio.to_thread(
                publish,
                topic,
                "dashboard.updated",
                {"n": n, "sent_at": time.time(), "pad": padding},
            )
            await asyncio.sleep(0.02)
        expected = sockets * events
        deadline = time.monotonic() + 90
        while len(latencies) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        cpu_used = sum(server.cpu_seconds() for server in servers) - cpu_before
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)
        ordered = sorted(latencies) or [0.0]
        elapsed = max(last_arrival[0] - first_send, 1e-6)
        return FanoutResult(
            scenario="fan-out" if servers_count == 1 else "scale-out",
            layer=layer,
            servers=servers_count,
            sockets=sockets,
            events=events,
            deliveries=len(latencies),
            expected=expected,
            deliveries_per_second=round(len(latencies) / elapsed),
            latency_p50_ms=round(statistics.median(ordered) * 1000, 1),
            latency_p99_ms=round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
            latency_max_ms=round(ordered[-1] * 1000, 1),
            server_rss_per_socket_kib=round((rss_after - rss_before) / sockets, 1),
            server_cpu_us_per_delivery=round(cpu_used / max(len(latencies), 1) * 1e6, 1),
        )
    finally:
        for server in servers:
            server.stop(keep_log=len(latencies) < sockets * events)


async def rest_latency(token: str, requests: int, concurrency: int) -> dict[str, Any]:
    import httpx

    server = Server(bench_env("pubsub"))
    try:
        server.wait_ready()
        url = f"http://127.0.0.1:{server.port}/api/v1/auth/me"
        headers = {"Authorization": f"Bearer {token}"}
        latencies: list[float] = []
        failures = 0
        async with httpx.AsyncClient(timeout=30) as client:
            await client.get(url, headers=headers)  # warm-up
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(requests):
                queue.put_nowait(n)

            async def worker() -> None:
                nonlocal failures
                while not queue.empty():
                    queue.get_nowait()
                    started = time.perf_counter()
                    response = await client.get(url, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    failures += response.status_code != 200

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        ordered = sorted(latencies)
        return {
            "scenario": "rest GET /api/v1/auth/me",
            "requests": requests,
            "concurrency": concurrency,
            "failures": failures,
            "requests_per_second": round(requests / elapsed),
            "latency_p50_ms": round(statistics.median(ordered) * 1000, 1),
            "latency_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        }
    finally:
        server.stop()


def write_results(results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['started_at']} on {results['machine']}.",
        "",
        "| scenario | layer | servers | sockets | events | delivered/expected | deliveries/s "
        "| p50 ms | p99 ms | max ms | server RSS KiB/socket | server CPU µs/delivery |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["fanout"]:
        lines.append(
            f"| {r['scenario']} | {r['layer']} | {r['servers']} | {r['sockets']} | {r['events']} "
            f"| {r['deliveries']}/{r['expected']} | {r['deliveries_per_second']} "
            f"| {r['latency_p50_ms']} | {r['latency_p99_ms']} | {r['latency_max_ms']} "
            f"| {r['server_rss_per_socket_kib']} | {r['server_cpu_us_per_delivery']} |"
        )
    rest = results["rest"]
    lines += [
        "",
        "| REST scenario | requests | concurrency | failures | req/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
        f"| {rest['scenario']} | {rest['requests']} | {rest['concurrency']} | {rest['failures']} "
        f"| {rest['requests_per_second']} | {rest['latency_p50_ms']} | {rest['latency_p99_ms']} |",
        "",
    ]
    (RESULTS / "latest.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rest-requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument(
        "--scenarios", default="pubsub:1,core:1,pubsub:2", help="layer:servers, comma-separated"
    )
    args = parser.parse_args()
    if args.quick:
        args.sockets, args.events, args.rest_requests = 100, 20, 200
    RESULTS.mkdir(exist_ok=True)
    log("preparing a scratch database")
    token = prepare_database()
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "fanout": [],
    }

    async def run_all() -> None:
        for spec in args.scenarios.split(","):
            layer, servers = spec.split(":")[0], int(spec.split(":")[1])
            result = await fanout(layer, servers, args.sockets, args.events, token)
            log(
                f"{result.scenario}/{layer}: {result.deliveries}/{result.expected} delivered, "
                f"{result.deliveries_per_second}/s, p50 {result.latency_p50_ms} ms, "
                f"p99 {result.latency_p99_ms} ms"
            )
            results["fanout"].append(asdict(result))
        log(f"REST: {args.rest_requests} requests")
        results["rest"] = await rest_latency(token, args.rest_requests, concurrency=32)
        log(
            f"REST: {results['rest']['requests_per_second']} req/s, "
            f"p99 {results['rest']['latency_p99_ms']} ms"
        )

    asyncio.run(run_all())
    write_results(results)
    log(f"written to {RESULTS / 'latest.md'}")


if __name__ == "__main__":
    main()
