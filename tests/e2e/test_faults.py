"""Fault and soak suite (`make soak`): Redis dies under a running server, and a long run
of many sockets with reconnects. Real processes, real Redis, real MariaDB."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    LOG_DIR,
    WS,
    OpenWS,
    PrivateRedis,
    Publisher,
    Server,
    ServerPool,
    free_port,
    make_user,
    rename_sync,
)

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


@pytest.mark.timeout(240)
async def test_soak_many_sockets_with_reconnects_miss_nothing(
    servers: ServerPool, open_ws: OpenWS
) -> None:
    """Two processes, 100 sockets of one user split between them, 300 committed events over
    about a minute; a fifth of the sockets reconnect with `since` at random moments. Every
    socket must see every event exactly once, in order."""
    a, b = servers.get("main"), servers.get("b")
    me, issued = await make_user()
    token = issued.plain_text
    topic = f"user.{me.pk}"
    total = 300
    names = [f"s{n}" for n in range(total)]
    sockets: list[WS] = []
    offsets: list[str] = []
    for n in range(100):
        ws = await open_ws(a if n % 2 else b, token)
        offsets.append((await ws.subscribe(topic))["offset"])
        sockets.append(ws)
    seen: list[list[str]] = [[] for _ in sockets]
    rng = random.Random(7)

    async def follow(index: int) -> None:
        ws = sockets[index]
        reconnects = 2 if index % 5 == 0 else 0
        while len(seen[index]) < total:
            if reconnects and rng.random() < 0.02:
                reconnects -= 1
                await ws.close()
                ws = await open_ws(a if rng.random() < 0.5 else b, token)
                answer = await ws.subscribe(topic, since=offsets[index])
                assert answer["recovered"] is True
            frame = await ws.recv_event("user.updated", timeout=30)
            seen[index].append(frame["data"]["name"])
            offsets[index] = frame["offset"]

    publisher = Publisher(servers=[a, b], user_id=me.pk, token=token, names=names, pause=0.2)
    publisher.start()
    try:
        await asyncio.gather(*(follow(i) for i in range(len(sockets))))
    finally:
        publisher.join(timeout=120)
    assert publisher.error is None
    for index, got in enumerate(seen):
        assert got == names, f"socket {index} diverged"
