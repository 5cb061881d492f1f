"""What the realtime path costs its Redis: commands and Redis CPU per socket, per
subscription, per event and per hosted topic at rest. The inputs of the capacity model in
docs/scaling.md.

``python -m loadtests.redis_ops [--users 20] [--sockets-per-user 5] [--events 10]``

It starts, on loopback, two redis-servers of its own (one for the cache and the broker,
``REDIS_URL``; one for realtime alone, ``REALTIME_REDIS_URLS``, the one measured) and
``scripts/run.sh`` (one server process, SQLite in a scratch ``TRITON_VAR_DIR``, a Celery
worker and beat on the cache Redis). Nothing of the project is imported: users register over
HTTP, sockets speak the protocol, events are ``PATCH /api/v1/users/{id}`` (``user.updated``
on ``user.{id}``). Around each phase: ``CONFIG RESETSTAT``, then ``INFO commandstats`` (calls
per command, commands run inside Lua scripts included) and ``INFO cpu`` (Redis CPU time);
the background rate of an idle phase is subtracted from the others. Figures go to stdout
and ``loadtests/results/redis_ops.json``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import redis
from websockets.asyncio.client import ClientConnection, connect

from loadtests.bench import RESULTS, ROOT, Process, free_port, log, triton_env

PASSWORD = "Redis-ops-pass-8791!"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PRIVATE_REDIS_OPTIONS = ("--save", "", "--appendonly", "no")


def start_redis() -> tuple[subprocess.Popen[bytes], str, redis.Redis]:
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", *PRIVATE_REDIS_OPTIONS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, decode_responses=True)
    for _ in range(100):
        try:
            client.ping()
            return process, f"redis://127.0.0.1:{port}/0", client
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


class Counter:
    """Commands and CPU of one Redis between :meth:`reset` and :meth:`read`."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.started = 0.0
        self.cpu = 0.0

    def _cpu(self) -> float:
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def reset(self) -> None:
        self.client.config_resetstat()
        self.started, self.cpu = time.monotonic(), self._cpu()

    def read(self) -> dict[str, Any]:
        cpu = self._cpu() - self.cpu
        stats = self.client.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if not name.removeprefix("cmdstat_").startswith(("config", "info"))
        }
        return {"seconds": time.monotonic() - self.started, "cpu_s": cpu, "calls": calls}


def net(phase: dict[str, Any], idle: dict[str, Any]) -> dict[str, Any]:
    """The phase minus the idle background for as long as the phase lasted."""
    scale = phase["seconds"] / idle["seconds"]
    calls = {
        name: max(0, round(count - idle["calls"].get(name, 0) * scale))
        for name, count in phase["calls"].items()
    }
    return {
        "calls": {name: count for name, count in calls.items() if count},
        "cpu_s": max(0.0, phase["cpu_s"] - idle["cpu_s"] * scale),
    }


def append_script() -> str:
    """The history's append script, read from realtime/history.py's source (not imported:
    load tests only speak to the system from outside)."""
    tree = ast.parse((ROOT / "realtime" / "history.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_APPEND_SCRIPT":
            return str(ast.literal_eval(node.value))
    raise LookupError("_APPEND_SCRIPT not found in realtime/history.py")


def saturate(url: str, events: int, clients: int, topics: int) -> dict[str, Any]:
    """Redis CPU per event and per topic check when Redis is busy (background spread thin):
    ``clients`` threads each send events as a relay does (the append script, then a PUBLISH
    to a channel one connection listens on; one round trip each), then the hub's sync pass
    (HMGET of every topic, pipelined) over ``topics`` topics."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushall()
    sha = client.script_load(append_script())
    listener = client.pubsub()
    listener.subscribe("ops-fan-out")
    counter = Counter(client)

    def relay(worker: int) -> None:
        own = redis.Redis.from_url(url)
        for n in range(events // clients):
            topic = f"ops:{{user.{worker * 100_000 + n % topics}}}"
            own.evalsha(sha, 2, f"{topic}:meta", f"{topic}:stream", "e0", 1000, 86400, "e", "{}")
            own.publish("ops-fan-out", b'{"type":"rt.event","data":{"name":"event"}}')

    counter.reset()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(relay, range(clients)))
    sent = counter.read()
    counter.reset()
    passes = 20
    for _ in range(passes):
        pipe = client.pipeline(transaction=False)
        for n in range(topics):
            pipe.hmget(f"ops:{{user.{n}}}:meta", "epoch", "seq")
        pipe.execute()
    checks = counter.read()
    listener.close()
    # Memory of a full topic: REALTIME_HISTORY_SIZE (1000) events of a 300-byte payload.
    before = int(client.info("memory")["used_memory"])
    payload = json.dumps({"name": "x" * 280, "id": 1})
    for _ in range(1000):
        client.evalsha(
            sha, 2, "ops:{full}:meta", "ops:{full}:stream", "e1", 1000, 86400, "e", payload
        )
    full_topic = int(client.info("memory")["used_memory"]) - before
    return {
        "per_event": per(sent, events // clients * clients),
        "per_topic_check": per(checks, passes * topics),
        "clients": clients,
        "full_topic_bytes": full_topic,
        "full_topic_payload_bytes": len(payload),
    }


def per(phase: dict[str, Any], count: int) -> dict[str, Any]:
    return {
        "commands": round(sum(phase["calls"].values()) / count, 2),
        "by_command": {name: round(n / count, 2) for name, n in sorted(phase["calls"].items())},
        "redis_cpu_us": round(phase["cpu_s"] * 1e6 / count, 1),
    }


async def register(client: httpx.AsyncClient, n: int) -> tuple[int, str]:
    email = f"ops-{os.urandom(4).hex()}-{n}@example.com"
    answer = await client.post(
        "/api/v1/auth/register", json={"name": f"ops {n}", "email": email, "password": PASSWORD}
    )
    answer.raise_for_status()
    body = answer.json()
    return int(body["user"]["id"]), str(body["token"])


async def send(ws: ClientConnection, frame: dict[str, Any], until: str) -> dict[str, Any]:
    await ws.send(json.dumps(frame))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if answer.get("type") in (until, "error"):
            assert answer["type"] == until, answer
            return dict(answer)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    cache_proc, cache_url, _ = start_redis()
    realtime_proc, realtime_url, realtime = start_redis()
    var_dir = Path(tempfile.mkdtemp(prefix="triton-redis-ops-"))
    try:
        result = await measure_system(args, var_dir, cache_url, realtime_url, realtime)
        # Triton is stopped: nothing else runs on the realtime Redis now.
        result["saturated"] = await asyncio.to_thread(
            saturate, realtime_url, args.saturate_events, 8, 1000
        )
        return result
    finally:
        for process in (cache_proc, realtime_proc):
            process.kill()
            process.wait(5)
        shutil.rmtree(var_dir, ignore_errors=True)


async def measure_system(
    args: argparse.Namespace,
    var_dir: Path,
    cache_url: str,
    realtime_url: str,
    realtime: redis.Redis,
) -> dict[str, Any]:
    """The five phases against a running Triton."""
    port = free_port()
    env = triton_env(args.server, var_dir) | {
        "PORT": str(port),
        "REDIS_URL": cache_url,
        "REALTIME_REDIS_URLS": realtime_url,
        "REGISTER_RATE_LIMIT": "10000/60",
    }
    server = Process("redis-ops", [str(ROOT / "scripts" / "run.sh")], env, port)
    counter = Counter(realtime)
    sockets: list[ClientConnection] = []
    try:
        server.wait_ready(f"http://127.0.0.1:{port}/api/v1/ping", timeout=600)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            users = [await register(http, n) for n in range(args.users)]
            await asyncio.sleep(2)  # registration's own background work settles
            url = f"ws://127.0.0.1:{port}/ws/v1/"
            total = args.users * args.sockets_per_user
            result: dict[str, Any] = {
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "server": args.server,
                "users": args.users,
                "sockets": total,
                "events_per_topic": args.events,
            }

            # 1. Sockets: connect and authenticate, no subscription.
            counter.reset()
            owners = []
            for user_id, token in users:
                for _ in range(args.sockets_per_user):
                    ws = await connect(url, open_timeout=10, compression=None)
                    await send(ws, {"type": "auth", "token": token}, "auth.ok")
                    sockets.append(ws)
                    owners.append(user_id)
            auth = counter.read()

            # 2. The first subscription of each topic in the process (the hub joins it), then
            # 3. the further subscriptions of topics already hosted.
            counter.reset()
            firsts = range(0, total, args.sockets_per_user)
            for index in firsts:
                topic = f"user.{owners[index]}"
                await send(sockets[index], {"type": "subscribe", "topic": topic}, "subscribed")
            first = counter.read()
            counter.reset()
            for index in set(range(total)) - set(firsts):
                topic = f"user.{owners[index]}"
                await send(sockets[index], {"type": "subscribe", "topic": topic}, "subscribed")
            further = counter.read()

            # 4. At rest: the hub's sync pass and presence heartbeat, per hosted topic.
            counter.reset()
            await asyncio.sleep(args.idle)
            idle = counter.read()

            # 5. Events, through REST, each delivered to every socket of its topic.
            counter.reset()
            for n in range(args.events):
                for user_id, token in users:
                    answer = await http.patch(
                        f"/api/v1/users/{user_id}",
                        json={"name": f"event {n}"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    answer.raise_for_status()
            for ws in sockets:
                for _ in range(args.events):
                    await asyncio.wait_for(ws.recv(), 10)
            events = counter.read()

        idle_net = {"calls": idle["calls"], "cpu_s": idle["cpu_s"]}
        result["per_socket_auth"] = per(net(auth, idle), total)
        result["per_first_subscription"] = per(net(first, idle), args.users)
        result["per_further_subscription"] = per(net(further, idle), total - args.users)
        result["per_hosted_topic_per_s_at_rest"] = per(
            idle_net, round(args.users * idle["seconds"])
        )
        result["per_s_at_rest"] = per(idle_net, round(idle["seconds"]))
        result["per_event"] = per(net(events, idle), args.events * args.users)
        result["phases"] = {
            "auth": auth,
            "first_subscription": first,
            "further_subscription": further,
            "idle": idle,
            "events": events,
        }
        return result
    finally:
        for ws in sockets:
            await ws.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20, help="users, so topics")
    parser.add_argument("--sockets-per-user", type=int, default=5)
    parser.add_argument("--events", type=int, default=10, help="events per topic")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds at rest")
    parser.add_argument("--server", default="uvicorn", choices=["uvicorn", "daphne"])
    parser.add_argument("--saturate-events", type=int, default=20_000)
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "redis_ops.json").write_text(json.dumps(result, indent=1) + "\n")
    summary = {k: v for k, v in result.items() if k != "phases"}
    log(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
