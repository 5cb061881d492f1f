"""Fault and soak suite (`make soak`): Redis dies under a running server, and a long run
of many sockets with reconnects. Real processes, real Redis, real MariaDB."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings
from websockets.exceptions import ConnectionClosed

from realtime.history import RedisHistory
from tests.e2e.conftest import (
    LOG_DIR,
    WS,
    Nginx,
    OpenWS,
    PrivateRedis,
    Publisher,
    Server,
    ServerPool,
    free_port,
    make_user,
    rename_sync,
    start_server_on_redis,
)
from tests.factories import RoomFactory
from tests.mariadb import PrivateMariaDB

pytestmark = [pytest.mark.e2e, pytest.mark.soak, pytest.mark.django_db(transaction=True)]


@pytest.mark.timeout(90)
async def test_redis_outage_loses_no_committed_event(
    server_pool: ServerPool, private_redis: PrivateRedis, open_ws: OpenWS, transactional_db: None
) -> None:
    """Changes committed while Redis is down reach the open socket once it is back: their
    outbox rows wait, the sweeper relays them, and the hub picks up the new history."""
    env = server_pool.mariadb_env()
    env.update(
        REDIS_URL=private_redis.url,
        CELERY_BROKER_URL=private_redis.url,
        REALTIME_INPROCESS_SWEEP="true",
        OUTBOX_SWEEP_INTERVAL="0.5",
        OUTBOX_RELAY_DELAY="1",
    )
    port = free_port()
    server = Server(name="outage", port=port, env=env, log_path=LOG_DIR / f"outage-{port}.log")
    server.start()
    try:
        me, issued = await make_user()
        token = issued.plain_text
        socket: WS = await open_ws(server, token)
        await socket.subscribe(f"user.{me.pk}")
        await asyncio.to_thread(rename_sync, server, me.pk, token, "before")
        assert (await socket.recv_event("user.updated"))["data"]["name"] == "before"

        private_redis.kill()
        for name in ("during-1", "during-2", "during-3"):
            # The write commits; only its relay fails, and the outbox keeps the event.
            await asyncio.to_thread(rename_sync, server, me.pk, token, name)
        private_redis.start()

        names = []
        while len(names) < 3:
            event = await socket.recv_event("user.updated", timeout=20)
            names.append(event["data"]["name"])
        assert names == ["during-1", "during-2", "during-3"]

        await asyncio.to_thread(rename_sync, server, me.pk, token, "after")
        assert (await socket.recv_event("user.updated", timeout=10))["data"]["name"] == "after"
    finally:
        server.stop()
        Path(server.log_path).unlink(missing_ok=True)


# Seconds of publishing in the soak below: five minutes under `make soak`; shorter for a try.
SOAK_SECONDS = float(os.environ.get("FAULTS_SOAK_SECONDS", "300"))
# Two committed events a second, whatever a write costs on a busy machine.
SOAK_PAUSE = 0.5


def _gauges(server: Server) -> dict[str, float]:
    """The process's realtime gauges from its /metrics (realtime/hub.py)."""
    text = httpx.get(f"{server.http}/metrics", timeout=15).text
    wanted = ("triton_realtime_sockets", "triton_realtime_topics", "triton_realtime_loop_tasks")
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name] = float(value)
    assert set(found) == set(wanted), found
    return found


def _layer_subscribers(topic: str) -> int:
    """Server processes whose channel layer still listens to the topic's group (pub/sub)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    [(_, count)] = client.pubsub_numsub(f"{prefix}__group__rt.{topic}")
    return int(count)


@pytest.mark.timeout(SOAK_SECONDS + 300)
async def test_soak_many_sockets_with_reconnects_miss_nothing(
    servers: ServerPool, open_ws: OpenWS
) -> None:
    """Two processes, 100 sockets of one user split between them, events committed at a
    fixed rate (two a second, through alternating processes) for FAULTS_SOAK_SECONDS (default
    300); a fifth of the sockets leave at random moments, half of those killed (the TCP
    connection aborted, no close handshake), and come back with `since`. Every socket must
    see every event exactly once, in order (0 gaps, 0 duplicates); once every socket is gone,
    no process still listens to the topic on the channel layer, and each holds the sockets,
    topics and asyncio tasks it held before (its /metrics gauges): 0 leaked subscriptions or
    tasks. Then one process is killed (SIGKILL) with a member in a room: the other process's
    sockets are told that member left within 8 s (PRESENCE_TTL=2).

    FAULTS_SOAK_SECONDS=40 makes a short run of it (`make soak` runs the full five minutes)."""
    # The pair with a 2 s presence TTL: "ttl-b" is killed at the end.
    a, b = servers.get("ttl-a"), servers.get("ttl-b")
    me, issued = await make_user()
    token = issued.plain_text
    topic = f"user.{me.pk}"
    total = max(10, int(SOAK_SECONDS / SOAK_PAUSE))
    # One idle socket per process starts its hub; what the process holds then is the baseline.
    probes = [await open_ws(server, token) for server in (a, b)]
    await asyncio.sleep(1.5)
    baseline = [await asyncio.to_thread(_gauges, server) for server in (a, b)]
    names = [f"s{n}" for n in range(total)]
    sockets: list[WS] = []
    offsets: list[str] = []
    for n in range(100):
        ws = await open_ws(a if n % 2 else b, token)
        offsets.append((await ws.subscribe(topic))["offset"])
        sockets.append(ws)
    seen: list[list[str]] = [[] for _ in sockets]
    rng = random.Random(7)
    # Spread the reconnects over the whole run, whatever its length.
    leave_chance = 2 / total

    async def follow(index: int) -> None:
        ws = sockets[index]
        reconnects = 2 if index % 5 == 0 else 0
        while len(seen[index]) < total:
            if reconnects and rng.random() < leave_chance:
                reconnects -= 1
                if rng.random() < 0.5:
                    await ws.close()
                else:
                    ws.conn.transport.abort()  # killed: the server sees a reset
                ws = await open_ws(a if rng.random() < 0.5 else b, token)
                sockets[index] = ws
                answer = await ws.subscribe(topic, since=offsets[index])
                assert answer["recovered"] is True
            frame = await ws.recv_event("user.updated", timeout=30)
            seen[index].append(frame["data"]["name"])
            offsets[index] = frame["offset"]

    publisher = Publisher(
        servers=[a, b], user_id=me.pk, token=token, names=names, pause=SOAK_PAUSE, fixed_rate=True
    )
    publisher.start()
    try:
        await asyncio.gather(*(follow(i) for i in range(len(sockets))))
    finally:
        publisher.join(timeout=120)
    assert publisher.error is None
    for index, got in enumerate(seen):
        assert got == names, f"socket {index} diverged"

    # Both processes listen to the topic while their sockets follow it...
    assert await asyncio.to_thread(_layer_subscribers, topic) == 2
    for ws in sockets:
        await ws.close()
    # ...and neither once every socket is gone; each process holds what it held before.
    history = RedisHistory(settings.REDIS_URL, prefix=settings.REALTIME_KEY_PREFIX)
    deadline = time.monotonic() + 15
    while True:
        leaked = await asyncio.to_thread(_layer_subscribers, topic)
        online = await asyncio.to_thread(history.online_users)
        held = [await asyncio.to_thread(_gauges, server) for server in (a, b)]
        # The probes stay: one socket and no topic each; tasks at most a couple of transient
        # ones (a heartbeat in flight) over the baseline.
        settled = all(
            now["triton_realtime_sockets"] == 1
            and now["triton_realtime_topics"] == 0
            and now["triton_realtime_loop_tasks"] <= before["triton_realtime_loop_tasks"] + 2
            for now, before in zip(held, baseline, strict=True)
        )
        if not leaked and online == {me.pk} and settled:
            break
        assert time.monotonic() < deadline, (leaked, online, baseline, held)
        await asyncio.sleep(0.5)
    print(f"soak: {total} events x {len(sockets)} sockets; held before {baseline}, after {held}")

    # A process dies with members in a room: the others are told they left, within
    # PRESENCE_TTL + one heartbeat (PRESENCE_TTL / 3) + one sync interval (about 3 s here).
    bob, bob_issued = await make_user()
    room = await database_sync_to_async(RoomFactory)(members=[me, bob])
    watcher = probes[0]
    await watcher.subscribe(f"room.{room.pk}", id="room")
    doomed: WS = await open_ws(b, bob_issued.plain_text)
    await doomed.subscribe(f"room.{room.pk}", id="room")
    await watcher.recv_until(
        lambda f: f.get("event") == "presence.joined" and f["data"]["user_id"] == bob.pk
    )
    assert b.proc is not None
    b.proc.kill()
    b.proc.wait(5)
    killed_at = time.monotonic()
    await watcher.recv_until(
        lambda f: f.get("event") == "presence.left" and f["data"]["user_id"] == bob.pk,
        timeout=8,
    )
    print(f"presence: left reported {time.monotonic() - killed_at:.1f}s after the kill")


# --- MariaDB frozen (SIGSTOP) --------------------------------------------------------------
# The frozen-database server's bounds (seconds): every wait on MariaDB ends after these.
FROZEN_READ_TIMEOUT = 3
FROZEN_CONNECT_TIMEOUT = 2


def _register(server: Server, email: str) -> tuple[int, str]:
    answer = httpx.post(
        f"{server.http}/api/v1/auth/register",
        json={"name": email.split("@")[0], "email": email, "password": "glacier-Otter-517"},
        timeout=15,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return int(body["user"]["id"]), str(body["token"])


def _timed_get(server: Server, path: str, token: str | None = None) -> tuple[httpx.Response, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.monotonic()
    answer = httpx.get(f"{server.http}{path}", headers=headers, timeout=60)
    return answer, time.monotonic() - started


@pytest.mark.timeout(420)
async def test_a_frozen_database_answers_503_in_bounded_time_and_recovers(
    own_servers: ServerPool, private_mariadb: PrivateMariaDB, open_ws: OpenWS
) -> None:
    """MariaDB stopped with SIGSTOP (the host hangs; sockets stay open, nothing answers).
    No request and no socket handler waits past the database timeouts; requests answer 503
    problem+json with Retry-After; the same process keeps answering pings on its sockets;
    after SIGCONT success is back within 5 s, without restarting the server."""
    env = own_servers.mariadb_env(
        DB_READ_TIMEOUT=str(FROZEN_READ_TIMEOUT),
        DB_WRITE_TIMEOUT=str(FROZEN_READ_TIMEOUT),
        DB_CONNECT_TIMEOUT=str(FROZEN_CONNECT_TIMEOUT),
        HEALTH_CHECK_TIMEOUT="1",
    )
    database = f"faults_frozen_{os.getpid()}"
    env["DATABASE_URL"] = await asyncio.to_thread(private_mariadb.migrated_database, database, env)
    port = free_port()
    server = Server(name="frozen-db", port=port, env=env, log_path=LOG_DIR / f"frozen-{port}.log")
    await asyncio.to_thread(server.start)
    try:
        alice, alice_token = await asyncio.to_thread(_register, server, "alice@example.com")
        bob, bob_token = await asyncio.to_thread(_register, server, "bob@example.com")
        watcher: WS = await open_ws(server, alice_token)
        await watcher.subscribe(f"user.{alice}")
        latecomer: WS = await open_ws(server, bob_token)
        # Every request thread holds a live connection, so the freeze hits reused ones too.
        warm = await asyncio.gather(
            *(
                asyncio.to_thread(_timed_get, server, "/api/v1/auth/me", alice_token)
                for _ in range(8)
            )
        )
        assert {answer.status_code for answer, _ in warm} == {200}

        private_mariadb.freeze()
        frozen_at = time.monotonic()
        pongs: list[float] = []

        async def keep_pinging() -> None:
            while time.monotonic() - frozen_at < 2 * FROZEN_READ_TIMEOUT + 4:
                sent = time.monotonic()
                await watcher.ping()
                pongs.append(time.monotonic() - sent)
                await asyncio.sleep(0.25)

        async def subscribe_while_frozen() -> tuple[dict[str, Any], float]:
            sent = time.monotonic()
            await latecomer.send({"type": "subscribe", "topic": f"user.{bob}", "id": "frozen"})
            answer, _ = await latecomer.recv_until(
                lambda f: f.get("id") == "frozen", timeout=4 * FROZEN_READ_TIMEOUT + 5
            )
            return answer, time.monotonic() - sent

        requests = [
            asyncio.to_thread(_timed_get, server, "/api/v1/auth/me", alice_token) for _ in range(6)
        ]
        pinging = asyncio.create_task(keep_pinging())
        subscribing = asyncio.create_task(subscribe_while_frozen())
        health = await asyncio.to_thread(_timed_get, server, "/health")
        answers = await asyncio.gather(*requests)
        subscribe_answer, subscribe_took = await subscribing
        await pinging

        took = sorted(round(seconds, 2) for _, seconds in answers)
        print(
            f"frozen: requests {took}, subscribe {subscribe_took:.2f}, "
            f"health {health[1]:.2f}, slowest pong {max(pongs):.2f}"
        )
        for answer, _ in answers:
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert answer.headers["Retry-After"] == "5"
        bound = FROZEN_READ_TIMEOUT + 2.0
        assert max(took) <= bound, took
        assert subscribe_answer["type"] == "error", subscribe_answer
        assert subscribe_answer["code"] == "unavailable", subscribe_answer
        assert subscribe_took <= bound, subscribe_took
        assert health[0].status_code == 503 and health[0].json()["checks"]["database"] != "ok"
        assert health[1] <= 3, health
        # Pings never touch the database: the event loop was never blocked.
        assert max(pongs) < 1.0, pongs

        private_mariadb.thaw()
        thawed_at = time.monotonic()
        while True:
            answer, _ = await asyncio.to_thread(_timed_get, server, "/api/v1/auth/me", alice_token)
            if answer.status_code == 200:
                break
            assert time.monotonic() - thawed_at < 5, answer.text
            await asyncio.sleep(0.2)
        back_after = time.monotonic() - thawed_at
        assert (await latecomer.subscribe(f"user.{bob}", id="thawed"))["type"] == "subscribed"
        assert (await asyncio.to_thread(_timed_get, server, "/health"))[0].status_code == 200
        print(f"thawed: success after {back_after:.2f}s")
    finally:
        private_mariadb.thaw()
        server.stop()
        with contextlib.suppress(Exception):
            private_mariadb.execute(f"DROP DATABASE IF EXISTS `{database}`")


# --- Redis killed and restarted empty under 1,000 sockets ----------------------------------
LIVE_SOCKETS = int(os.environ.get("FAULTS_LIVE_SOCKETS", "1000"))


def _health_status(server: Server) -> int:
    return httpx.get(f"{server.http}/health", timeout=15).status_code


@dataclass
class Follower:
    """One client: the events of its topic it holds, in the order it got them."""

    ws: WS
    names: list[str] = field(default_factory=list)
    offsets: list[str] = field(default_factory=list)
    closes: list[tuple[int | None, float]] = field(default_factory=list)


@pytest.mark.timeout(420)
async def test_redis_killed_under_a_thousand_sockets_loses_nothing(
    own_servers: ServerPool, private_redis: PrivateRedis, open_ws: OpenWS, transactional_db: None
) -> None:
    """Redis is killed (SIGKILL) and restarted empty while FAULTS_LIVE_SOCKETS (default 1,000)
    sockets of one user, split between two server processes, follow the user's topic; changes
    keep being committed meanwhile. Each socket keeps receiving (or is closed 1012 and
    resubscribes with `since`), and holds every committed event, in commit order, within
    10 s of Redis' return; resubscribing with its last offset then recovers with nothing
    missing. REST keeps answering while Redis is down; /health reports the outage (503) and
    the recovery (200)."""
    outbox = {
        "REALTIME_INPROCESS_SWEEP": "true",
        "OUTBOX_SWEEP_INTERVAL": "0.5",
        "OUTBOX_RELAY_DELAY": "1",
    }
    a = await asyncio.to_thread(
        start_server_on_redis, own_servers, private_redis, "redis-a", **outbox
    )
    b = await asyncio.to_thread(
        start_server_on_redis, own_servers, private_redis, "redis-b", **outbox
    )
    try:
        me, issued = await make_user()
        token = issued.plain_text
        topic = f"user.{me.pk}"
        followers: list[Follower] = []
        for start in range(0, LIVE_SOCKETS, 50):
            opened = await asyncio.gather(
                *(
                    open_ws(a if n % 2 else b, token)
                    for n in range(start, min(start + 50, LIVE_SOCKETS))
                )
            )
            for ws in opened:
                assert (await ws.subscribe(topic))["type"] == "subscribed"
                followers.append(Follower(ws))
        expected = ["before", "during-1", "during-2", "during-3", "after"]
        loop = asyncio.get_running_loop()
        redis_back_at: list[float] = []

        async def follow(index: int, follower: Follower) -> None:
            while len(follower.names) < len(expected):
                try:
                    frame = await follower.ws.recv(timeout=60)
                except ConnectionClosed:
                    code = follower.ws.conn.close_code
                    follower.closes.append((code, loop.time()))
                    assert code == 1012, f"socket {index} closed with {code}"
                    follower.ws = await open_ws(a if index % 2 else b, token)
                    answer = await follower.ws.subscribe(topic, since=follower.offsets[-1])
                    assert answer["recovered"] is True, (index, answer)
                    continue
                if frame.get("type") == "event" and frame.get("event") == "user.updated":
                    follower.names.append(frame["data"]["name"])
                    follower.offsets.append(frame["offset"])

        following = [asyncio.create_task(follow(i, f)) for i, f in enumerate(followers)]
        await asyncio.to_thread(rename_sync, a, me.pk, token, "before")

        private_redis.kill()
        killed_at = loop.time()
        for n, name in enumerate(expected[1:4]):
            # Each write commits; only its relay fails, and the outbox keeps the event.
            await asyncio.to_thread(rename_sync, (a, b)[n % 2], me.pk, token, name)
        for server in (a, b):
            read = await asyncio.to_thread(
                httpx.get,
                f"{server.http}/api/v1/users/{me.pk}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
            )
            assert read.status_code == 200, read.text  # a cache miss, not an error
            assert read.json()["name"] == "during-3"
            assert await asyncio.to_thread(_health_status, server) == 503
        await asyncio.sleep(max(0.0, 2 - (loop.time() - killed_at)))

        private_redis.start()
        redis_back_at.append(loop.time())
        await asyncio.to_thread(rename_sync, b, me.pk, token, "after")
        done, pending = await asyncio.wait(following, timeout=10)
        whole_after = loop.time() - redis_back_at[0]
        for task in done:
            task.result()  # a failed assertion inside a follower
        late = [i for i, task in enumerate(following) if task in pending]
        for task in pending:
            task.cancel()
        assert not late, f"{len(late)} sockets still missing events 10 s after Redis' return"
        # Every socket: every committed event once, in commit order; consecutive offsets
        # within the history that began after the restart.
        for index, follower in enumerate(followers):
            assert follower.names == expected, (index, follower.names)
            epochs_seqs = [o.rpartition(":") for o in follower.offsets[1:]]
            assert len({epoch for epoch, _, _ in epochs_seqs}) == 1, (index, follower.offsets)
            seqs = [int(seq) for _, _, seq in epochs_seqs]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (index, follower.offsets)
        closed = [f for f in followers if f.closes]
        for follower in closed:
            assert follower.closes[0][1] - redis_back_at[0] <= 10
        # Resubscribing from its last offset, a socket is whole: recovered, nothing missing.
        for follower in followers[:: max(1, LIVE_SOCKETS // 100)]:
            answer = await follower.ws.subscribe(topic, since=follower.offsets[-1], id="again")
            assert answer["recovered"] is True and answer["offset"] == follower.offsets[-1], answer
        deadline = loop.time() + 15
        while any([await asyncio.to_thread(_health_status, s) != 200 for s in (a, b)]):
            assert loop.time() < deadline, "/health did not report the recovery"
            await asyncio.sleep(0.5)
        print(
            f"redis outage: {len(followers)} sockets whole, {len(closed)} closed 1012, "
            f"all whole {whole_after:.1f}s after the restart"
        )
    finally:
        a.stop()
        b.stop()
        for server in (a, b):
            Path(server.log_path).unlink(missing_ok=True)


# --- a server process killed behind nginx ---------------------------------------------------
def _committed_names(topic: str) -> list[str]:
    """The topic's events as committed (outbox rows in commit order): the ground truth."""
    from realtime.models import OutboxEvent

    rows = OutboxEvent.objects.filter(topic=topic).order_by("id").values_list("payload", flat=True)
    return [json.loads(payload)["name"] for payload in rows]


@pytest.mark.timeout(300)
async def test_a_server_process_killed_behind_nginx_loses_no_event(
    own_servers: ServerPool, open_ws: OpenWS, tmp_path: Path, transactional_db: None
) -> None:
    """nginx (`make cluster`'s configuration, HTTPS) over two server processes; 40 sockets through
    it follow one topic while changes are committed through it at a fixed rate. One process
    is killed (SIGKILL) a third of the way in: nginx sends every new request to the other
    (a request in flight on the dead one may fail, and is retried), and the killed
    process's clients reconnect through nginx with `since` and recover. Every client ends
    holding every committed event, in commit order, exactly once."""
    sweep = {
        "REALTIME_INPROCESS_SWEEP": "true",
        "OUTBOX_SWEEP_INTERVAL": "0.5",
        "OUTBOX_RELAY_DELAY": "1",
    }
    victim, survivor = await asyncio.to_thread(
        own_servers.start_fresh, {"lb-victim": sweep, "lb-survivor": sweep}
    )
    nginx = Nginx([victim, survivor], tmp_path / "nginx")
    await asyncio.to_thread(nginx.start)
    front = nginx.as_server()
    victim_addr, survivor_addr = (f"127.0.0.1:{s.port}" for s in (victim, survivor))
    try:
        me, issued = await make_user()
        token = issued.plain_text
        topic = f"user.{me.pk}"
        followers: list[Follower] = []
        for _ in range(40):
            ws = await open_ws(front, token, ssl=nginx.ssl_context)
            follower = Follower(ws)
            follower.offsets.append((await ws.subscribe(topic))["offset"])
            follower.names.append(ws.conn.response.headers["X-Triton-Upstream"])
            followers.append(follower)
        upstreams = [f.names.pop() for f in followers]
        assert set(upstreams) == {victim_addr, survivor_addr}, upstreams
        on_victim = sum(1 for u in upstreams if u == victim_addr)

        async def follow(follower: Follower) -> None:
            while True:
                try:
                    frame = await follower.ws.recv(timeout=60)
                except ConnectionClosed:
                    follower.closes.append((follower.ws.conn.close_code, time.monotonic()))
                    follower.ws = await open_ws(front, token, ssl=nginx.ssl_context)
                    answer = await follower.ws.subscribe(topic, since=follower.offsets[-1])
                    assert answer["recovered"] is True, answer
                    continue
                if frame.get("type") == "event" and frame.get("event") == "user.updated":
                    follower.names.append(frame["data"]["name"])
                    follower.offsets.append(frame["offset"])

        following = [asyncio.create_task(follow(f)) for f in followers]
        total, kill_at = 60, 20
        failed_in_flight = 0
        served_after_kill: list[str] = []
        async with httpx.AsyncClient(
            base_url=nginx.http, timeout=30, verify=nginx.ssl_context
        ) as client:
            for n in range(total):
                if n == kill_at:
                    assert victim.proc is not None
                    os.killpg(victim.proc.pid, signal.SIGKILL)
                    victim.proc.wait(5)
                while True:
                    try:
                        answer = await client.patch(
                            f"/api/v1/users/{me.pk}",
                            json={"name": f"n{n}"},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                    except httpx.TransportError:
                        failed_in_flight += 1
                        continue
                    if answer.status_code == 200:
                        break
                    # Only a request in flight on the killed process may fail.
                    assert answer.status_code in (502, 504), answer.text
                    failed_in_flight += 1
                if n >= kill_at:
                    served_after_kill.append(answer.headers["X-Triton-Upstream"])
                await asyncio.sleep(0.1)
        assert failed_in_flight <= 2, failed_in_flight
        # nginx may try the dead process first (connection refused), then the other one.
        assert {served.split(", ")[-1] for served in served_after_kill} == {survivor_addr}

        committed = await database_sync_to_async(_committed_names)(topic)
        assert committed[-1] == f"n{total - 1}"
        deadline = time.monotonic() + 20
        while any(len(f.names) < len(committed) for f in followers):
            for task in following:
                if task.done():
                    task.result()
            assert time.monotonic() < deadline, [len(f.names) for f in followers]
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # anything more would be a duplicate
        for task in following:
            task.cancel()
        for index, follower in enumerate(followers):
            assert follower.names == committed, (index, follower.names)
        reconnected = sum(1 for f in followers if f.closes)
        assert reconnected >= on_victim, (reconnected, on_victim)
        print(
            f"killed process: {on_victim} of {len(followers)} sockets reconnected and recovered, "
            f"{failed_in_flight} request(s) in flight failed and were retried"
        )
    finally:
        nginx.stop()
        victim.stop()
        survivor.stop()
