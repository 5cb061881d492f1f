"""Per-topic order survives a Redis outage: events committed while Redis is down go out
before the change that follows the outage, so a client never ends on stale data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    WS,
    OpenWS,
    PrivateRedis,
    ServerPool,
    make_user,
    rename_sync,
    start_server_on_redis,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def offset_seq(frame: dict) -> tuple[str, int]:
    epoch, _, seq = frame["offset"].rpartition(":")
    return epoch, int(seq)


async def run_outage(
    server_pool: ServerPool,
    private_redis: PrivateRedis,
    open_ws: OpenWS,
    during: list[str],
    name: str,
) -> None:
    # The sweeper waits long (30 s): only the relay that follows the outage can deliver the
    # stranded events in time, and it must send them first.
    server = start_server_on_redis(
        server_pool,
        private_redis,
        name,
        REALTIME_INPROCESS_SWEEP="true",
        OUTBOX_RELAY_DELAY="30",
        OUTBOX_SWEEP_INTERVAL="30",
    )
    try:
        me, issued = await make_user()
        token = issued.plain_text
        socket: WS = await open_ws(server, token)
        topic = f"user.{me.pk}"
        await socket.subscribe(topic)
        await asyncio.to_thread(rename_sync, server, me.pk, token, "before")
        assert (await socket.recv_event("user.updated"))["data"]["name"] == "before"

        private_redis.kill()
        for new_name in during:
            # Each write commits; its relay fails and the outbox keeps the event.
            await asyncio.to_thread(rename_sync, server, me.pk, token, new_name)
        private_redis.start()
        await asyncio.to_thread(rename_sync, server, me.pk, token, "after")

        events = []
        while not events or events[-1]["data"]["name"] != "after":
            events.append(await socket.recv_event("user.updated", timeout=15, topic=topic))
        # Anything later would be out of order too.
        assert await socket.nothing(1.0)
        assert [e["data"]["name"] for e in events] == [*during, "after"]
        offsets = [offset_seq(e) for e in events]
        assert len({epoch for epoch, _ in offsets}) == 1
        seqs = [seq for _, seq in offsets]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), offsets

        fresh = httpx.get(
            f"{server.http}/api/v1/users/{me.pk}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert fresh.status_code == 200
        assert events[-1]["data"]["name"] == fresh.json()["name"] == "after"
    finally:
        server.stop()
        Path(server.log_path).unlink(missing_ok=True)


@pytest.mark.timeout(120)
async def test_events_committed_during_a_redis_outage_keep_commit_order(
    server_pool: ServerPool, private_redis: PrivateRedis, open_ws: OpenWS
) -> None:
    await run_outage(
        server_pool, private_redis, open_ws, ["during-1", "during-2", "during-3"], "order"
    )


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_many_events_committed_during_a_redis_outage_keep_commit_order(
    server_pool: ServerPool, private_redis: PrivateRedis, open_ws: OpenWS
) -> None:
    await run_outage(
        server_pool, private_redis, open_ws, [f"during-{n}" for n in range(25)], "order-soak"
    )
