"""`make bench`: Triton measured from outside, each figure beside a bare baseline of the same run.

What it starts, all on loopback: ``scripts/run.sh`` exactly as ``make run`` does (embedded
valkey, SQLite, in a scratch ``TRITON_VAR_DIR``), once per server under test
(``TRITON_SERVER``), and ``loadtests.bare`` (a plain ``websockets`` broadcast server, the
ceiling). Socket clients live in several processes (``loadtests.clients``). Nothing of the
project is imported: the user is registered over HTTP and a few tokens come from HTTP logins;
the thousands more the socket scenarios need are issued by a ``manage.py shell`` subprocess
with the server's environment; events are caused over HTTP (``PATCH /api/v1/users/{id}``, which
publishes ``user.updated`` to ``user.{id}``).

Figures (``loadtests/results/latest.json`` and ``.md``):

* ``ws_fanout`` at 1,000 and 5,000 sockets of one user subscribed to ``user.{id}``, 100
  profile changes 20 ms apart: deliveries/s (from the first trigger to the last arrival),
  p50/p99 latency (trigger sent -> frame parsed), lost/duplicated/out-of-order, server CPU
  per delivery; the bare server gets the same load. 5,000 sockets at 20 ms apart is more
  than the bare server delivers here, so the 5,000 size has a second round (``paced``) at
  the 1,000 size's deliveries/s (100 ms apart), where latency is not queueing;
* ``ws_connect``: sockets/s connected + authenticated + subscribed (distinct tokens), and the
  reconnect storm: every socket of the 5,000 reconnects with ``since`` after events it missed;
  seconds until all have them;
* ``ws_memory``: server RSS per idle authenticated socket at 5,000, measured first, on the
  freshly started server (and a fresh bare server), before the other sections grow the heap;
* ``rest``: on MariaDB + Redis, ``GET /api/v1/products`` and ``/auth/me`` at concurrency 32
  against ``GET /api/v1/ping`` (a constant JSON answer through the same stack) on the same
  server, then ``POST /api/v1/orders``;
* ``e2e``: on MariaDB + Redis with a Celery worker, the mixed locust load at 200 users while
  ``loadtests.e2e_status_push`` times ``POST /orders/{id}/status`` -> the owner's frame.

``--profile`` records the server with py-spy during fan-out, connect, REST and e2e (raw
stacks under ``loadtests/results/``). ``--quick`` is a smoke run with small numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from loadtests import e2e_status_push
from loadtests.clients import ClientProcess, call_all, event_name

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "loadtests" / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
PASSWORD = "Bench-pass-8791!"
PRODUCTS_PAGE = 20


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- processes ---------------------------------------------------------------------------------
def listening_pid(port: int) -> int | None:
    """The pid of the process that listens on 127.0.0.1:``port`` (the server itself, whatever
    script started it)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return int(pid)
    return None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and its live descendants (a Celery worker and its pool)."""
    parents: dict[int, int] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(stat[1])
    total, family = 0.0, {pid}
    for child in sorted(parents):  # children have larger pids here, bar pid wrap-around
        if child == pid or parents[child] in family:
            family.add(child)
            with contextlib.suppress(OSError):
                total += cpu_seconds(child)
    return total


def settle(pid: int, timeout: float = 20.0) -> None:
    """Wait until the process stops burning CPU (closing sockets, flushing): no fixed sleep."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = cpu_seconds(pid)
        if now - before < 0.03:
            return
        before = now


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int) -> None:
        self.name, self.port = name, port
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS / f"{name}.log"
        self.log_file = self.log_path.open("w")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid: int = 0

    def wait_ready(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError, OSError):
                if url.startswith("tcp:"):
                    socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                else:
                    httpx.get(url, timeout=5)
                pid = listening_pid(self.port)
                if pid:
                    self.pid = pid
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            # run.sh stops its children on TERM; the group covers anything else it started.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log_file.close()


def triton_env(server: str, var_dir: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOST="127.0.0.1",
        TRITON_SERVER=server,
        TRITON_VAR_DIR=str(var_dir),
        DJANGO_SUPERUSER_EMAIL="",
        # One key for the server and the seeding subprocess (settings refuse to start without).
        DJANGO_SECRET_KEY=f"bench-only-{var_dir.name}-not-a-secret-0123456789abcdef",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_triton(server: str, var_dir: Path) -> Process:
    port = free_port()
    env = triton_env(server, var_dir) | {"PORT": str(port)}
    process = Process(f"triton-{server}", [str(ROOT / "scripts" / "run.sh")], env, port)
    process.wait_ready(f"http://127.0.0.1:{port}/api/v1/ping")
    return process


def start_bare() -> Process:
    port = free_port()
    process = Process(
        "bare", [str(PYTHON), "-m", "loadtests.bare", "--port", str(port)], dict(os.environ), port
    )
    process.wait_ready("tcp:")
    return process


class Profiler:
    """``py-spy record`` on the server for the length of a ``with`` block (``--profile``)."""

    def __init__(
        self, enabled: bool, pid: int, name: str, *, gil: bool = False, subprocesses: bool = False
    ) -> None:
        # gil: sample only the thread holding the GIL (threads waiting for it would show as
        # "self" time wherever they wait). subprocesses: the pid's children too (uvicorn's
        # workers).
        self.enabled, self.pid, self.name, self.gil = enabled, pid, name, gil
        self.subprocesses = subprocesses
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        py_spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin"))
        if self.enabled and py_spy:
            output = RESULTS / f"profile-{self.name}.txt"
            self.process = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(self.pid),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(output),
                    "--nonblocking",
                    *(["--gil"] if self.gil else []),
                    *(["--subprocesses"] if self.subprocesses else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)  # py-spy attaches before the load starts
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)


# --- seeding over HTTP -------------------------------------------------------------------------
@dataclass
class Seed:
    user_id: int
    tokens: list[str]
    writer_token: str
    profile: dict[str, Any]


ISSUE_TOKENS = """
import json
from django.db import transaction
from backend.accounts.models import User
from backend.accounts.tokens import token_issue
user = User.objects.get(pk={user_id})
with transaction.atomic():
    tokens = [token_issue(user=user, device_name=f"bench {{n}}").plain_text for n in range({count})]
print("TOKENS " + json.dumps(tokens))
"""


async def seed(base: str, env: dict[str, str], tokens_needed: int) -> Seed:
    """One user registered over HTTP, a few tokens from HTTP logins, the rest issued by a
    ``manage.py shell`` subprocess with the server's environment (thousands of logins would
    take minutes; the socket path treats every token alike)."""
    email = f"bench-{os.urandom(4).hex()}@example.com"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        answer = await client.post(
            "/api/v1/auth/register", json={"name": "bench", "email": email, "password": PASSWORD}
        )
        answer.raise_for_status()
        body = answer.json()
        user_id, writer_token = body["user"]["id"], body["token"]
        tokens: list[str] = []
        for n in range(min(tokens_needed, 20)):
            reply = await client.post(
                "/api/v1/auth/login",
                json={"email": email, "password": PASSWORD, "device_name": f"socket {n}"},
            )
            reply.raise_for_status()
            tokens.append(reply.json()["token"])
        auth = {"Authorization": f"Bearer {writer_token}"}
        me = await client.get("/api/v1/auth/me", headers=auth)
        me.raise_for_status()
    if tokens_needed > len(tokens):
        script = ISSUE_TOKENS.format(user_id=user_id, count=tokens_needed - len(tokens))
        issued = await asyncio.to_thread(
            subprocess.run,
            [str(PYTHON), "manage.py", "shell", "-v", "0", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        line = next(x for x in issued.stdout.splitlines() if x.startswith("TOKENS "))
        tokens += json.loads(line.removeprefix("TOKENS "))
    return Seed(user_id, tokens, writer_token, me.json())


# --- triggers: the write that causes each event ------------------------------------------------
class Trigger:
    # Seconds from each write leaving to its answer; None for a trigger that gets no answer.
    answer_times: list[float] | None = None

    async def fire(self, n: int) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class RestTrigger(Trigger):
    def __init__(self, base: str, seed: Seed) -> None:
        self.client = httpx.AsyncClient(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {seed.writer_token}"}
        )
        self.path = f"/api/v1/users/{seed.user_id}"
        self.failures = 0
        self.answer_times: list[float] = []  # the write's share of an event's latency

    async def fire(self, n: int) -> None:
        sent_at = time.time()
        try:
            answer = await self.client.patch(self.path, json={"name": event_name(n, sent_at)})
        except httpx.HTTPError:
            self.failures += 1  # shows as lost deliveries too
            return
        self.answer_times.append(time.time() - sent_at)
        self.failures += answer.status_code != 200

    async def aclose(self) -> None:
        await self.client.aclose()


class BareTrigger(Trigger):
    def __init__(self, url: str, seed: Seed) -> None:
        self.url, self.seed = url, seed
        self.ws: Any = None

    async def fire(self, n: int) -> None:
        from websockets.asyncio.client import connect

        if self.ws is None:
            self.ws = await connect(self.url, compression=None, ping_interval=None)
        data = dict(self.seed.profile, name=event_name(n, time.time()))
        await self.ws.send(
            json.dumps(
                {"type": "publish", "topic": f"user.{self.seed.user_id}", "event": "user.updated"}
                | {"data": data}
            )
        )

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def fire_schedule(trigger: Trigger, numbers: range, interval: float) -> float:
    """Fire one trigger every ``interval`` seconds (not waiting for answers); the start time."""
    started = time.time()
    tasks = []
    for index, n in enumerate(numbers):
        delay = started + index * interval - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(trigger.fire(n)))
    await asyncio.gather(*tasks)
    return started


# --- scenarios ---------------------------------------------------------------------------------
def split(items: list[str], parts: int) -> list[list[str]]:
    return [items[i::parts] for i in range(parts)]


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Bench:
    def __init__(self, args: argparse.Namespace, clients: list[ClientProcess]) -> None:
        self.args = args
        self.clients = clients
        self.next_event = 0

    def numbers(self, count: int) -> range:
        start = self.next_event
        self.next_event += count
        return range(start, start + count)

    async def connect(self, url: str, tokens: list[str], topic: str) -> dict[str, Any]:
        replies = await call_all(
            self.clients,
            "connect",
            url=url,
            per_client={"tokens": split(tokens, len(self.clients))},
            topic=topic,
            concurrency=self.args.connect_concurrency,
        )
        opened = sum(r["opened"] for r in replies)
        failed = sum(r["failed"] for r in replies)
        elapsed = max(r["finished"] for r in replies) - min(r["started"] for r in replies)
        if failed:
            log(f"  {failed} sockets failed to open: {[e for r in replies for e in r['errors']]}")
        return {"opened": opened, "failed": failed, "seconds": elapsed}

    async def close(self, pid: int) -> None:
        await call_all(self.clients, "close")
        await asyncio.to_thread(settle, pid)

    async def memory(self, url: str, tokens: list[str], topic: str, pid: int) -> float:
        """KiB of RSS the server grows by per idle authenticated, subscribed socket."""
        await asyncio.to_thread(settle, pid)
        before = rss_kib(pid)
        opened = await self.connect(url, tokens, topic)
        await asyncio.to_thread(settle, pid)
        grown = rss_kib(pid) - before
        await self.close(pid)
        return round(grown / max(opened["opened"], 1), 1)

    async def deliver(
        self, trigger: Trigger, pid: int, events: int, interval: float
    ) -> dict[str, Any]:
        numbers = self.numbers(events)
        await call_all(self.clients, "expect", numbers=list(numbers))
        cpu_before = cpu_seconds(pid)
        if trigger.answer_times is not None:
            trigger.answer_times.clear()
        first_send = await fire_schedule(trigger, numbers, interval)
        replies = await call_all(self.clients, "collect", wait_s=self.args.collect_timeout)
        cpu_used = cpu_seconds(pid) - cpu_before
        latencies = sorted(x for r in replies for x in r["latencies"])
        unique = sum(r["unique"] for r in replies)
        expected = sum(r["expected"] for r in replies)
        last_arrival = max(r["last_arrival"] for r in replies)
        elapsed = max(last_arrival - first_send, 1e-6)
        result: dict[str, Any] = {
            "expected": expected,
            "delivered": unique,
            "lost": expected - unique,
            "duplicated": sum(r["duplicates"] for r in replies),
            "out_of_order": sum(r["out_of_order"] for r in replies),
            "deliveries_per_s": round(unique / elapsed),
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "max_ms": round((latencies[-1] if latencies else 0) * 1000, 1),
            "server_cpu_us_per_delivery": round(cpu_used / max(unique, 1) * 1e6, 1),
            "last_arrival": last_arrival,
        }
        if trigger.answer_times is not None:
            answers = sorted(trigger.answer_times)
            result["write_answer_p50_ms"] = round(percentile(answers, 0.50) * 1000, 1)
            result["write_answer_p99_ms"] = round(percentile(answers, 0.99) * 1000, 1)
        return result

    async def storm(self, url: str, topic: str, trigger: Trigger, pid: int) -> dict[str, Any]:
        """Every socket drops, events happen meanwhile, every socket comes back with since."""
        await call_all(self.clients, "close")
        numbers = self.numbers(self.args.storm_events)
        for n in numbers:
            await trigger.fire(n)  # committed (answered) before anyone reconnects
        await asyncio.to_thread(settle, pid)
        await call_all(self.clients, "expect", numbers=list(numbers))
        started = time.time()
        replies = await call_all(
            self.clients,
            "connect",
            url=url,
            per_client={"tokens": [[] for _ in self.clients]},
            topic=topic,
            concurrency=self.args.connect_concurrency,
            resume=True,
        )
        collected = await call_all(self.clients, "collect", wait_s=self.args.collect_timeout)
        unique = sum(r["unique"] for r in collected)
        expected = sum(r["expected"] for r in collected)
        done = max(max(r["last_arrival"] for r in collected), max(r["finished"] for r in replies))
        return {
            "sockets": sum(r["opened"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "missed_events": len(numbers),
            "recovered": unique,
            "expected": expected,
            "seconds": round(done - started, 2),
        }


def _http_request(port: int, method: str, path: str, token: str, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
    )
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def rest_load(
    port: int,
    path: str,
    tokens: list[str],
    requests: int,
    concurrency: int,
    *,
    seconds: float = 60.0,
    method: str = "GET",
    bodies: list[bytes] | None = None,
    expect: bytes = b"200",
    think: float = 0.0,
) -> dict[str, Any]:
    """Keep-alive HTTP/1.1 requests over raw streams (a client far lighter than the server):
    ``requests`` in all or for ``seconds``, whichever ends first. Worker ``n`` sends with
    ``tokens[n % len(tokens)]``; request ``k`` carries ``bodies[k % len(bodies)]``. With
    ``think`` each worker waits 0.5-1.5 times that long between its requests, as a user does."""
    latencies: list[float] = []
    failures: list[str] = []
    remaining = [requests]
    deadline = time.monotonic() + seconds
    status_ok = b"HTTP/1.1 " + expect

    async def worker(n: int) -> None:
        pause = random.Random(n)
        if think:
            await asyncio.sleep(pause.uniform(0, think))  # users do not all start at once
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        token = tokens[n % len(tokens)]
        requests = [_http_request(port, method, path, token, body) for body in bodies or [b""]]
        try:
            while remaining[0] > 0 and time.monotonic() < deadline:
                remaining[0] -= 1
                request = requests[remaining[0] % len(requests)]
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(status_ok):
                    failures.append(
                        head.split(b"\r\n", 1)[0].decode() + " " + answer[:200].decode()
                    )
                if think:
                    await asyncio.sleep(think * pause.uniform(0.5, 1.5))
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    if failures:
        log(f"  {method} {path}: {len(failures)} failures, e.g. {failures[:3]}")
    return {
        "requests": len(ordered),
        "concurrency": concurrency,
        "failures": len(failures),
        "rps": round(len(ordered) / elapsed),
        "p50_ms": round(percentile(ordered, 0.5) * 1000, 1),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 1),
    }


async def best_of_two_rounds(
    args: argparse.Namespace,
    port: int,
    pid: int,
    paths: dict[str, str],
    tokens: list[str],
    *,
    profile: str = "",
) -> dict[str, dict[str, Any]]:
    """Each of ``paths`` (name -> path) at concurrency 32, back to back, twice, interleaved
    (the machine's load shifts during a run): the better run of each, with ``cpu_us``, the
    server's CPU per request over both rounds. ``profile``: py-spy the first round."""
    best: dict[str, dict[str, Any]] = {}
    cpu: dict[str, float] = {}
    requests: dict[str, int] = {}
    for round_ in range(2):
        for name, path in paths.items():
            before = cpu_seconds(pid)
            with Profiler(bool(profile) and not round_, pid, f"{profile}-{name}"):
                run = await rest_load(
                    port, path, tokens, args.rest_requests, 32, seconds=args.rest_seconds
                )
            cpu[name] = cpu.get(name, 0.0) + cpu_seconds(pid) - before
            requests[name] = requests.get(name, 0) + run["requests"]
            if name not in best or run["rps"] > best[name]["rps"]:
                best[name] = run
    for name, run in best.items():
        run["cpu_us"] = round(cpu[name] / max(requests[name], 1) * 1e6)
    return best


# --- REST on MariaDB + Redis -------------------------------------------------------------------
class RestDeployment:
    """Triton's server (``scripts/serve.sh``, the default server) on the machine's MariaDB
    and Redis, as a production deployment runs it, with a database and key prefixes of its
    own: created here, migrated, seeded with ``manage.py seed_loadtest``, removed at the end."""

    def __init__(self, args: argparse.Namespace, var_dir: Path, name: str = "rest") -> None:
        self.name = name  # of the server's and the worker's logs: triton-<name>.log
        self.run_id = f"triton-bench-{os.getpid()}-{os.urandom(3).hex()}"
        self.database = self.run_id.replace("-", "_")
        self.args = args
        self.server: Process | None = None
        self.worker: Process | None = None
        self.env = triton_env(args.servers.split(",")[0], var_dir) | {
            "DATABASE_URL": f"{args.mariadb_url.rstrip('/')}/{self.database}",
            "REDIS_URL": args.redis_url,
            "CACHE_KEY_PREFIX": self.run_id,
            "CHANNEL_LAYER_PREFIX": self.run_id,
            "REALTIME_KEY_PREFIX": f"{self.run_id}:rt",
            # No worker consumes it: the delayed dashboard refreshes wait there until cleanup.
            "CELERY_QUEUE": self.run_id,
            "TRITON_SERVER": args.servers.split(",")[0],
        }

    def _mariadb(self, statement: str) -> None:
        import pymysql

        parts = urlsplit(self.args.mariadb_url)
        connection = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            connect_timeout=5,
        )
        try:
            connection.cursor().execute(statement)
        finally:
            connection.close()

    def manage(self, *argv: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(PYTHON), "manage.py", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {argv[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def start(self, users: int, products: int, rooms: int = 0) -> dict[str, Any]:
        self._mariadb(
            f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        log(f"  migrating database {self.database} on MariaDB")
        self.manage("migrate", "--noinput", "-v", "0")
        tokens_path = Path(self.env["TRITON_VAR_DIR"]) / "rest-tokens.json"
        self.manage(
            "seed_loadtest",
            f"--users={users}",
            f"--products={products}",
            f"--rooms={rooms}",
            "--stock=1000000000",
            f"--tokens-out={tokens_path}",
        )
        port = free_port()
        self.server = Process(
            f"triton-{self.name}",
            [str(ROOT / "scripts" / "serve.sh"), "127.0.0.1", str(port)],
            self.env,
            port,
        )
        self.server.wait_ready(f"http://127.0.0.1:{port}/api/v1/ping")
        return dict(json.loads(tokens_path.read_text()))

    def start_worker(self, timeout: float = 90) -> None:
        """A Celery worker on the run's own queue, with beat (``-B``) for the outbox sweeper:
        the dashboard's refreshes are jobs, and relays that failed are swept."""
        schedule = Path(self.env["TRITON_VAR_DIR"]) / f"{self.run_id}-beat"
        self.worker = Process(
            f"triton-{self.name}-worker",
            [
                str(ROOT / ".venv" / "bin" / "celery"),
                "-A",
                "workers",
                "worker",
                "-B",
                "-s",
                str(schedule),
                "-c",
                "1",
                "-Q",
                self.run_id,
                "-l",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            self.env,
            0,
        )
        deadline = time.monotonic() + timeout
        while " ready." not in self.worker.log_path.read_text():
            if self.worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {self.worker.log_path}")
            time.sleep(0.3)
        self.worker.pid = self.worker.process.pid

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.server is not None:
            self.server.stop()
        with contextlib.suppress(Exception):
            self._mariadb(f"DROP DATABASE IF EXISTS `{self.database}`")
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(self.args.redis_url)
            for key in client.scan_iter(match=f"*{self.run_id}*", count=1000):
                client.delete(key)


async def measure_rest(args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    """GET /products (20 items, cache hit) and GET /auth/me beside GET /ping on the same
    server in the same run, then POST /orders at 50 concurrent clients."""
    log("REST: a MariaDB + Redis deployment of the default server")
    deployment = RestDeployment(args, var_dir)
    try:
        seeded = deployment.start(users=args.order_clients, products=50)
        assert deployment.server is not None
        port, pid = deployment.server.port, deployment.server.pid
        tokens = [user["token"] for user in seeded["users"]]
        products = f"/api/v1/products?limit={PRODUCTS_PAGE}"
        # Warm-up: connections of every thread, the first cache fill, lazy imports.
        for path in ("/api/v1/ping", products, "/api/v1/auth/me"):
            await rest_load(port, path, tokens, 300, 16)
        count, seconds, concurrency = args.rest_requests, args.rest_seconds, 32
        runs = await best_of_two_rounds(
            args,
            port,
            pid,
            {"ping": "/api/v1/ping", "products": products},
            tokens,
            profile="rest" if args.profile else "",
        )
        cpu: dict[str, float] = {}
        me = await rest_load(port, "/api/v1/auth/me", tokens, count, concurrency, seconds=seconds)

        rng = random.Random(7)
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"http://127.0.0.1:{port}{products}")).json()["items"]
        product_ids = sorted(item["id"] for item in listed)
        bodies = [
            json.dumps(
                {
                    "items": [
                        {"product_id": pid_, "quantity": rng.randint(1, 3)}
                        for pid_ in rng.sample(product_ids, rng.randint(1, 3))
                    ]
                }
            ).encode()
            for _ in range(500)
        ]
        order_load: dict[str, Any] = {
            "port": port,
            "path": "/api/v1/orders",
            "tokens": tokens,
            "requests": args.order_requests,
            "concurrency": args.order_clients,
            "method": "POST",
            "bodies": bodies,
            "expect": b"201",
        }
        # The most the server takes: every client sends its next order on the answer.
        saturated = await rest_load(**order_load, seconds=seconds)
        # Shoppers: each client waits about --order-think seconds between its orders.
        before = cpu_seconds(pid)
        with Profiler(args.profile, pid, "rest-orders"):
            orders = await rest_load(
                **order_load, seconds=args.rest_seconds * 2, think=args.order_think
            )
        cpu["orders"] = cpu_seconds(pid) - before
        # The cache after a burst of orders: stock changed, the list is still served.
        after = await rest_load(port, products, tokens, count, concurrency, seconds=seconds)
    finally:
        deployment.stop()
    result = {
        "products_rps": runs["products"]["rps"],
        "baseline_rps": runs["ping"]["rps"],
        "products_p50_ms": runs["products"]["p50_ms"],
        "products_p99_ms": runs["products"]["p99_ms"],
        "baseline_p99_ms": runs["ping"]["p99_ms"],
        "products_percent_of_baseline": round(
            100 * runs["products"]["rps"] / max(runs["ping"]["rps"], 1)
        ),
        "products_cpu_us_per_request": runs["products"]["cpu_us"],
        "baseline_cpu_us_per_request": runs["ping"]["cpu_us"],
        "products_after_orders_rps": after["rps"],
        "me_rps": me["rps"],
        "me_p50_ms": me["p50_ms"],
        "me_p99_ms": me["p99_ms"],
        "orders_saturated_rps": saturated["rps"],
        "orders_saturated_p99_ms": saturated["p99_ms"],
        "order_think_s": args.order_think,
        "orders_rps": orders["rps"],
        "orders_p50_ms": orders["p50_ms"],
        "orders_p99_ms": orders["p99_ms"],
        "orders": orders["requests"],
        "orders_cpu_us_per_order": round(cpu["orders"] / max(orders["requests"], 1) * 1e6),
        "order_clients": args.order_clients,
        "failures": sum(r["failures"] for r in (*runs.values(), me, saturated, orders, after)),
        "concurrency": concurrency,
        "database": "mariadb",
    }
    log(f"  REST: {result}")
    return result


# --- end to end under the mixed locust load ---------------------------------------------------
async def measure_e2e(args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    """The mixed locust load (loadtests/locustfile.py) at ``--e2e-users`` on a MariaDB + Redis
    deployment with a Celery worker, while ``e2e_status_push`` times staff status moves to
    the owner's socket frame."""
    log(
        f"E2E: {args.e2e_users} locust users on a MariaDB + Redis deployment with a worker, "
        f"{args.e2e_processes} server process(es)"
    )
    deployment = RestDeployment(args, var_dir, name="e2e")
    # One process per core, as a deployment runs it (scripts/serve.sh): under this load one
    # process is CPU-bound on its own, whatever the other core does (docs/benchmarks.md).
    deployment.env["WEB_CONCURRENCY"] = str(args.e2e_processes)
    try:
        # One account per locust user, plus the probe's own (the last one).
        seeded = deployment.start(users=args.e2e_users + 1, products=50, rooms=5)
        deployment.start_worker()
        assert deployment.server is not None and deployment.worker is not None
        tokens_path = Path(deployment.env["TRITON_VAR_DIR"]) / "e2e-tokens.json"
        tokens_path.write_text(json.dumps(seeded))
        # The server's whole tree: with several processes, uvicorn's supervisor and its workers.
        pid, worker_pid = deployment.server.process.pid, deployment.worker.pid
        # Who else takes the 2 cores: MariaDB and Redis, when they run on this machine (they
        # serve other clients too, so their share is an upper bound).
        services = {
            name: found
            for name, url in (("mariadb", args.mariadb_url), ("redis", args.redis_url))
            if (found := listening_pid(urlsplit(url).port or 0))
        }
        cpu_before = {name: cpu_seconds(found) for name, found in services.items()}
        cpu_before |= {"server": tree_cpu_seconds(pid), "worker": tree_cpu_seconds(worker_pid)}
        with Profiler(args.profile, pid, "e2e", gil=True, subprocesses=True):
            result = await asyncio.to_thread(
                e2e_status_push.run,
                f"http://127.0.0.1:{deployment.server.port}",
                tokens_path,
                users=args.e2e_users,
                spawn_rate=args.e2e_spawn_rate,
                seconds=args.e2e_seconds,
                results_dir=RESULTS,
                name="e2e-locust",
            )
        cpu_after = {name: cpu_seconds(found) for name, found in services.items()}
        cpu_after |= {"server": tree_cpu_seconds(pid), "worker": tree_cpu_seconds(worker_pid)}
        for name, seconds in cpu_after.items():
            result[f"{name}_cpu_s"] = round(seconds - cpu_before[name], 1)
        server_log = deployment.server.log_path.read_text(errors="replace")
        # Relays that failed (deadlock, Redis) are left to the sweeper: late or twice.
        result["relay_failures_logged"] = server_log.count("relay failed")
    finally:
        deployment.stop()
    result["database"] = "mariadb"
    result["server_processes"] = args.e2e_processes
    log(f"  E2E: { {k: v for k, v in result.items() if k not in ('locust', 'probe_errors')} }")
    return result


# --- one server under test ---------------------------------------------------------------------
async def make_run_rest(
    args: argparse.Namespace, triton: Process, tokens: list[str]
) -> dict[str, Any]:
    """``GET /auth/me`` beside ``/ping`` at concurrency 32 on ``make run`` itself (SQLite, the
    embedded valkey)."""
    for path in ("/api/v1/ping", "/api/v1/auth/me"):
        await rest_load(triton.port, path, tokens, 300, 16)  # warm-up
    best = await best_of_two_rounds(
        args, triton.port, triton.pid, {"ping": "/api/v1/ping", "me": "/api/v1/auth/me"}, tokens
    )
    return {
        "me_rps": best["me"]["rps"],
        "me_p50_ms": best["me"]["p50_ms"],
        "me_p99_ms": best["me"]["p99_ms"],
        "me_cpu_us_per_request": best["me"]["cpu_us"],
        "baseline_rps": best["ping"]["rps"],
        "baseline_p99_ms": best["ping"]["p99_ms"],
        "failures": best["me"]["failures"] + best["ping"]["failures"],
    }


def beside_bare(triton_run: dict[str, Any], bare_run: dict[str, Any]) -> dict[str, Any]:
    """A fan-out round's figures: Triton's, the bare server's as ``ceiling_*``."""
    figures = {key: triton_run[key] for key in ("deliveries_per_s", "p50_ms", "p99_ms")}
    figures |= {f"ceiling_{key}": bare_run[key] for key in figures}
    triton_only = (
        "write_answer_p50_ms",
        "write_answer_p99_ms",
        "lost",
        "duplicated",
        "out_of_order",
    )
    return figures | {key: triton_run[key] for key in triton_only}


def paced_interval(args: argparse.Namespace, subscribers: int) -> float:
    """Seconds between events that offer ``subscribers`` the deliveries/s the smallest size
    gets at ``args.interval``; 0 for the smallest size itself (its main round is that)."""
    smallest = min(args.subscribers)
    if subscribers <= smallest:
        return 0.0
    return args.interval * subscribers / smallest


async def measure_server(
    args: argparse.Namespace, server: str, var_dir: Path, seed_cache: list[Seed]
) -> dict[str, Any]:
    log(f"starting scripts/run.sh with TRITON_SERVER={server}")
    triton = start_triton(server, var_dir)
    try:
        bare = start_bare()
    except BaseException:
        triton.stop()
        raise
    clients = [ClientProcess() for _ in range(args.client_processes)]
    bench = Bench(args, clients)
    base = f"http://127.0.0.1:{triton.port}"
    triton_ws = f"ws://127.0.0.1:{triton.port}/ws/v1/"
    bare_ws = f"ws://127.0.0.1:{bare.port}/ws/v1/"
    result: dict[str, Any] = {"server": server, "server_pid": triton.pid}
    try:
        if not seed_cache:
            log(f"seeding one user and {args.tokens} tokens over HTTP")
            seed_cache.append(await seed(base, triton_env(server, var_dir), args.tokens))
        the_seed = seed_cache[0]
        topic = f"user.{the_seed.user_id}"
        rest_trigger = RestTrigger(base, the_seed)
        bare_trigger = BareTrigger(bare_ws, the_seed)
        await rest_trigger.fire(bench.numbers(1)[0])  # warm-up: first write, first publish

        # Memory first, on the freshly started servers: after fan-out and connect have grown
        # the heap, new sockets reuse freed memory and the growth understates their cost.
        memory_n = min(max(args.subscribers), len(the_seed.tokens))
        result["ws_memory"] = {
            "sockets": memory_n,
            "kib_per_socket": await bench.memory(
                triton_ws, the_seed.tokens[:memory_n], topic, triton.pid
            ),
            "ceiling_kib_per_socket": await bench.memory(
                bare_ws, the_seed.tokens[:memory_n], topic, bare.pid
            ),
        }
        log(f"  memory: {result['ws_memory']}")

        # Connect rate: distinct tokens, all at once through the client processes.
        connect_n = min(args.connect_sockets, len(the_seed.tokens))
        with Profiler(args.profile, triton.pid, f"{server}-connect"):
            triton_connect = await bench.connect(triton_ws, the_seed.tokens[:connect_n], topic)
        await bench.close(triton.pid)
        bare_connect = await bench.connect(bare_ws, the_seed.tokens[:connect_n], topic)
        await bench.close(bare.pid)
        result["ws_connect"] = {
            "sockets": connect_n,
            "sockets_per_s": round(triton_connect["opened"] / triton_connect["seconds"]),
            "ceiling_sockets_per_s": round(bare_connect["opened"] / bare_connect["seconds"]),
            "failed": triton_connect["failed"],
        }
        log(f"  connect: {result['ws_connect']}")

        result["ws_fanout"] = []
        for subscribers in args.subscribers:
            tokens = the_seed.tokens[:subscribers]
            row: dict[str, Any] = {"subscribers": subscribers, "events": args.events}
            rss_before = rss_kib(triton.pid)
            opened = await bench.connect(triton_ws, tokens, topic)
            if subscribers == max(args.subscribers):
                await asyncio.to_thread(settle, triton.pid)
                # The same growth on the heap the earlier sections left (for comparison only).
                result["ws_memory"]["kib_per_socket_after_sections"] = round(
                    (rss_kib(triton.pid) - rss_before) / max(opened["opened"], 1), 1
                )
            with Profiler(
                args.profile and subscribers == min(args.subscribers),
                triton.pid,
                f"{server}-fanout-{subscribers}",
            ):
                triton_run = await bench.deliver(
                    rest_trigger, triton.pid, args.events, args.interval
                )
            # Above the smallest size, 20 ms apart offers more deliveries/s than the bare
            # server manages here, so its latency is queueing; a second round offers the
            # smallest size's deliveries/s (events further apart) to read latency unsaturated.
            paced = paced_interval(args, subscribers)
            if paced:
                triton_paced = await bench.deliver(rest_trigger, triton.pid, args.events, paced)
            if subscribers == max(args.subscribers) and args.storm_events:
                log(f"  reconnect storm: {subscribers} sockets resume with since")
                result["ws_connect"]["storm"] = await bench.storm(
                    triton_ws, topic, rest_trigger, triton.pid
                )
                result["ws_connect"]["storm_s"] = result["ws_connect"]["storm"]["seconds"]
            await bench.close(triton.pid)

            await bench.connect(bare_ws, tokens, topic)
            bare_run = await bench.deliver(bare_trigger, bare.pid, args.events, args.interval)
            if paced:
                bare_paced = await bench.deliver(bare_trigger, bare.pid, args.events, paced)
            await bench.close(bare.pid)
            row.update(
                beside_bare(triton_run, bare_run),
                server_cpu_us_per_delivery=triton_run["server_cpu_us_per_delivery"],
                ceiling_cpu_us_per_delivery=bare_run["server_cpu_us_per_delivery"],
                rest_trigger_failures=rest_trigger.failures,
            )
            row["percent_of_ceiling"] = round(
                100 * row["deliveries_per_s"] / max(row["ceiling_deliveries_per_s"], 1)
            )
            if paced:
                row["paced"] = {
                    "interval_ms": round(paced * 1000, 1),
                    **beside_bare(triton_paced, bare_paced),
                }
            result["ws_fanout"].append(row)
            log(f"  fan-out {subscribers}: {row}")
        result["make_run_rest"] = await make_run_rest(args, triton, the_seed.tokens[:32])
        log(f"  REST on make run: {result['make_run_rest']}")
        await rest_trigger.aclose()
        await bare_trigger.aclose()

    finally:
        for client in clients:
            client.stop()
        triton.stop()
        bare.stop()
    return result


# --- output ------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("django", "channels", "uvicorn", "daphne", "websockets", "uvloop", "twisted"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Triton bench {results['date']} on {results['machine']['summary']}; "
        f"default server {results['server']}; load average "
        f"{results['machine']['load_average_at_start'][0]:.1f} at the start, "
        f"{results['machine']['load_average_at_end'][0]:.1f} at the end.",
        "",
        "| server | figure | Triton | bare baseline | % of bare | goal |",
        "|---|---|---|---|---|---|",
    ]
    for by in results["by_server"].values():
        name = by["server"]
        for row in by["ws_fanout"]:
            n = row["subscribers"]
            lines.append(
                f"| {name} | fan-out {n}: deliveries/s | {row['deliveries_per_s']} "
                f"| {row['ceiling_deliveries_per_s']} | {row['percent_of_ceiling']}% "
                "| ≥ 80% (daphne ≥ 50%) |"
            )
            lines.append(
                f"| {name} | fan-out {n}: p50 / p99 ms (the PATCH's answer) "
                f"| {row['p50_ms']} / {row['p99_ms']} "
                f"({row['write_answer_p50_ms']} / {row['write_answer_p99_ms']}) "
                f"| {row['ceiling_p50_ms']} / {row['ceiling_p99_ms']} | | p99 ≤ 50 |"
            )
            if "paced" in row:
                paced = row["paced"]
                lines.append(
                    f"| {name} | fan-out {n}, events {paced['interval_ms']:g} ms apart: "
                    "deliveries/s, p50 / p99 ms (the PATCH's answer) "
                    f"| {paced['deliveries_per_s']}, "
                    f"{paced['p50_ms']} / {paced['p99_ms']} ({paced['write_answer_p50_ms']} / "
                    f"{paced['write_answer_p99_ms']}) | {paced['ceiling_deliveries_per_s']}, "
                    f"{paced['ceiling_p50_ms']} / {paced['ceiling_p99_ms']} | | p99 ≤ 50 |"
                )
            rounds = [row, row["paced"]] if "paced" in row else [row]
            lost, duplicated, out_of_order = (
                sum(r[key] for r in rounds) for key in ("lost", "duplicated", "out_of_order")
            )
            lines.append(
                f"| {name} | fan-out {n}: lost / duplicated / out of order "
                f"({len(rounds)} round{'s' if len(rounds) > 1 else ''}) "
                f"| {lost} / {duplicated} / {out_of_order} | | | 0 / 0 / 0 |"
            )
            lines.append(
                f"| {name} | fan-out {n}: server CPU µs/delivery "
                f"| {row['server_cpu_us_per_delivery']} | {row['ceiling_cpu_us_per_delivery']} "
                "| | |"
            )
        connect = by["ws_connect"]
        lines.append(
            f"| {name} | connect {connect['sockets']}: sockets/s | {connect['sockets_per_s']} "
            f"| {connect['ceiling_sockets_per_s']} "
            f"| {round(100 * connect['sockets_per_s'] / max(connect['ceiling_sockets_per_s'], 1))}%"
            " | ≥ 1000 |"
        )
        if "storm" in connect:
            storm = connect["storm"]
            lines.append(
                f"| {name} | reconnect storm {storm['sockets']} with since: s "
                f"(recovered {storm['recovered']}/{storm['expected']}) | {storm['seconds']} "
                "| | | ≤ 5 |"
            )
        if "ws_memory" in by:
            memory = by["ws_memory"]
            kib, bare_kib = memory["kib_per_socket"], memory["ceiling_kib_per_socket"]
            lines.append(
                f"| {name} | memory at {memory['sockets']} sockets, fresh servers: KiB/socket "
                f"| {kib} | {bare_kib} | {round(100 * kib / max(bare_kib, 0.1))}% | ≤ bare |"
            )
        if "make_run_rest" in by:
            on_run = by["make_run_rest"]
            lines.append(
                f"| {name} | REST GET /auth/me on make run (c=32): req/s, p50 / p99 ms "
                f"| {on_run['me_rps']}, {on_run['me_p50_ms']} / {on_run['me_p99_ms']} "
                f"| {on_run['baseline_rps']}, p99 {on_run['baseline_p99_ms']} (/ping) "
                f"| {round(100 * on_run['me_rps'] / max(on_run['baseline_rps'], 1))}% "
                "| ≥ 500, p99 ≤ 100 |"
            )
    rest = results.get("rest")
    if rest:
        pct = rest["products_percent_of_baseline"]
        lines += [
            f"| {results['server']} (MariaDB) | REST GET /products (20, cached) req/s (c=32) "
            f"| {rest['products_rps']} | {rest['baseline_rps']} (/ping) | {pct}% "
            "| ≥ 1000 and ≥ 50% |",
            f"| {results['server']} (MariaDB) | REST GET /products p50 / p99 ms "
            f"| {rest['products_p50_ms']} / {rest['products_p99_ms']} "
            f"| / {rest['baseline_p99_ms']} | | |",
            f"| {results['server']} (MariaDB) | REST server CPU µs/request, /products "
            f"| {rest['products_cpu_us_per_request']} | {rest['baseline_cpu_us_per_request']} "
            "| | |",
            f"| {results['server']} (MariaDB) | REST GET /products req/s after the orders "
            f"| {rest['products_after_orders_rps']} | | | |",
            f"| {results['server']} (MariaDB) | REST GET /auth/me req/s, p50 / p99 ms "
            f"| {rest['me_rps']}, {rest['me_p50_ms']} / {rest['me_p99_ms']} | | | |",
            f"| {results['server']} (MariaDB) | REST POST /orders, {rest['order_clients']} "
            f"clients each ~{rest['order_think_s']} s apart: orders/s, p50 / p99 ms "
            f"| {rest['orders_rps']}, {rest['orders_p50_ms']} / {rest['orders_p99_ms']} "
            "| | | p99 ≤ 100 |",
            f"| {results['server']} (MariaDB) | REST POST /orders, {rest['order_clients']} "
            "clients back to back: orders/s, p99 ms "
            f"| {rest['orders_saturated_rps']}, {rest['orders_saturated_p99_ms']} | | | |",
            f"| {results['server']} (MariaDB) | REST server CPU µs/order (paced run) "
            f"| {rest['orders_cpu_us_per_order']} | | | |",
        ]
    lines += e2e_rows(results["server"], results.get("e2e"))
    return "\n".join(lines) + "\n"


def e2e_rows(server: str, e2e: dict[str, Any] | None) -> list[str]:
    if not e2e:
        return []
    processes = e2e.get("server_processes", 1)
    who = (
        f"{server}, {processes} processes (MariaDB, worker)"
        if processes > 1
        else f"{server} (MariaDB, worker)"
    )
    return [
        f"| {who} | end to end, {e2e['users']} locust users: status POST -> owner's frame, "
        f"p50 / p99 ms | {e2e['status_push_p50_ms']} / {e2e['status_push_p99_ms']} "
        f"| {e2e.get('idle_status_push_p50_ms')} / {e2e.get('idle_status_push_p99_ms')} "
        "(no load) | | p99 ≤ 50 |",
        f"| {who} | end to end: the status POST's answer, p50 / p99 ms; the frame after the "
        f"answer, p50 / p99 ms | {e2e['status_post_p50_ms']} / {e2e['status_post_p99_ms']}; "
        f"{e2e['frame_after_answer_p50_ms']} / {e2e['frame_after_answer_p99_ms']} | | | |",
        f"| {who} | end to end: probe failures (of {e2e['probes']} moves), duplicate frames "
        f"| {e2e['failures']}, {e2e['duplicate_frames']} | | | 0 |",
        f"| {who} | end to end: locust req/s, failures (of {e2e['locust_requests']} requests) "
        f"| {e2e['locust_rps']}, {e2e['locust_failures']} | | | 0 failures |",
        f"| {who} | end to end: CPU s of server / worker / locust / MariaDB / Redis "
        f"in {e2e['seconds']} s | {e2e['server_cpu_s']} / {e2e['worker_cpu_s']} / "
        f"{e2e['locust_cpu_s']} / {e2e.get('mariadb_cpu_s', '-')} / {e2e.get('redis_cpu_s', '-')}"
        " | | | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--servers",
        default="uvicorn,daphne",
        help="comma-separated; the first is measured in full, the others at the first size",
    )
    parser.add_argument("--subscribers", default="1000,5000")
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument(
        "--interval",
        type=float,
        default=0.02,
        help="seconds between fan-out events (larger sizes also get a round at the smallest "
        "size's deliveries/s)",
    )
    parser.add_argument("--connect-sockets", type=int, default=2000)
    parser.add_argument("--storm-events", type=int, default=10)
    parser.add_argument(
        "--only",
        choices=("ws", "rest", "e2e"),
        default="",
        help="run one section (default: all)",
    )
    parser.add_argument("--rest-requests", type=int, default=8000, help="per GET run")
    parser.add_argument("--rest-seconds", type=float, default=8.0, help="per GET run, at most")
    parser.add_argument("--order-requests", type=int, default=3000)
    parser.add_argument("--order-clients", type=int, default=50)
    parser.add_argument(
        "--order-think", type=float, default=1.0, help="seconds a client waits between orders"
    )
    parser.add_argument("--e2e-users", type=int, default=200, help="locust users, mixed load")
    parser.add_argument("--e2e-spawn-rate", type=float, default=10.0, help="locust users/s")
    parser.add_argument(
        "--e2e-seconds", type=int, default=80, help="locust's run time, ramp-up included"
    )
    parser.add_argument(
        "--e2e-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes of the e2e deployment (WEB_CONCURRENCY; default: one per core)",
    )
    parser.add_argument("--mariadb-url", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--client-processes", type=int, default=3)
    parser.add_argument("--connect-concurrency", type=int, default=200, help="per client process")
    parser.add_argument("--collect-timeout", type=float, default=60)
    parser.add_argument("--profile", action="store_true", help="py-spy the server (raw stacks)")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--output", default=str(RESULTS / "latest"), help="path without suffix")
    args = parser.parse_args()
    args.subscribers = [int(n) for n in args.subscribers.split(",")]
    if args.quick:
        args.subscribers, args.events, args.connect_sockets = [50, 100], 10, 100
        args.rest_requests, args.client_processes, args.storm_events = 300, 2, 3
        args.rest_seconds, args.order_requests = 3.0, 200
        args.collect_timeout = 20
        args.e2e_users, args.e2e_spawn_rate, args.e2e_seconds = 20, 5.0, 30
    args.tokens = max([*args.subscribers, args.connect_sockets])
    # `make bench`'s timeout (or a Ctrl-C elsewhere) sends TERM: unwind, so that the `finally`
    # blocks stop the servers and workers and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    servers = args.servers.split(",")
    started, load_at_start = time.time(), os.getloadavg()
    var_dir = Path(tempfile.mkdtemp(prefix="triton-bench-"))
    seed_cache: list[Seed] = []
    by_server: dict[str, Any] = {}
    rest: dict[str, Any] | None = None
    e2e: dict[str, Any] | None = None
    try:
        if args.only in ("", "ws"):
            for index, server in enumerate(servers):
                if index:
                    # The other servers at the smallest size only: the run stays under 10 min.
                    args = argparse.Namespace(**{**vars(args), "subscribers": args.subscribers[:1]})
                by_server[server] = asyncio.run(measure_server(args, server, var_dir, seed_cache))
        if args.only in ("", "rest"):
            rest = asyncio.run(measure_rest(args, var_dir))
        if args.only in ("", "e2e"):
            e2e = asyncio.run(measure_e2e(args, var_dir))
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    default = by_server.get(servers[0], {})
    fanout = {str(row["subscribers"]): row for row in default.get("ws_fanout", [])}
    results = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started),
        "machine": {
            "summary": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{platform.system()} {platform.release()}",
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
        "versions": versions(),
        "server": servers[0],
        "options": {k: v for k, v in vars(args).items() if k not in ("output",)},
        "ws_fanout": fanout,
        "ws_connect": default.get("ws_connect"),
        "ws_memory": default.get("ws_memory"),
        "make_run_rest": default.get("make_run_rest"),
        "rest": rest,
        "e2e": e2e,
        "by_server": by_server,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    output.with_suffix(".md").write_text("# Benchmark results\n\n" + text)
    print(text)
    log(f"written to {output.with_suffix('.json')} and .md in {results['duration_s']} s")
    if any(
        row["lost"] or row["duplicated"] or row["out_of_order"]
        for by in by_server.values()
        for row in by["ws_fanout"]
    ):
        sys.exit(1)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
