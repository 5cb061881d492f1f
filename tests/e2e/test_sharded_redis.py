"""Two server processes on two realtime Redis instances (REALTIME_REDIS_URLS): topics spread
over both, every event still reaches both processes' sockets in order, and `since` recovers
what a disconnected client missed."""

from __future__ import annotations

import asyncio

import pytest
import redis
from django.conf import settings

from realtime.history import topic_shard
from tests.e2e.conftest import (
    WS,
    OpenWS,
    PrivateRedis,
    ServerPool,
    make_user,
    rename_sync,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TOPICS_PER_SHARD = 3
EVENTS_LIVE = 4
EVENTS_MISSED = 3


def seq_of(offset: str) -> int:
    return int(offset.rpartition(":")[2])


def topics_holding_history(client: redis.Redis) -> set[str]:
    """The topics whose history (meta hash) this Redis instance holds."""
    prefix = f"{settings.REALTIME_KEY_PREFIX}:{{"
    return {
        key.removeprefix(prefix).removesuffix("}:meta")
        for key in client.scan_iter(match=f"{prefix}*}}:meta", count=1000)
    }


def topics_with_fan_out(client: redis.Redis) -> set[str]:
    """The user topics whose pub/sub group channel some process subscribes to on this
    instance (the control group lives on one of them too)."""
    prefix = f"{settings.CHANNEL_LAYER_PREFIX}__group__rt."
    return {channel.removeprefix(prefix) for channel in client.pubsub_channels(f"{prefix}user.*")}


async def test_two_processes_on_two_redis_deliver_in_order_and_recover_with_since(
    servers: ServerPool, open_ws: OpenWS
) -> None:
    shards = [PrivateRedis(), PrivateRedis()]
    for instance in shards:
        instance.start()
    clients = [redis.Redis.from_url(r.url, decode_responses=True) for r in shards]
    a, b = servers.start_fresh(
        {
            name: {"REALTIME_REDIS_URLS": f"{shards[0].url},{shards[1].url}"}
            for name in ("shard-a", "shard-b")
        }
    )
    try:
        # Users (one topic each) until both instances carry a few topics.
        users: list[tuple[int, str, str]] = []  # (user id, token, topic)
        per_shard = [0, 0]
        while min(per_shard) < TOPICS_PER_SHARD:
            assert len(users) < 60, per_shard
            me, issued = await make_user()
            topic = f"user.{me.pk}"
            users.append((me.pk, issued.plain_text, topic))
            per_shard[topic_shard(topic, 2)] += 1

        # One socket per user on each process.
        sockets: dict[tuple[str, str], WS] = {}
        for _, token, topic in users:
            for server in (a, b):
                ws: WS = await open_ws(server, token)
                answer = await ws.subscribe(topic)
                assert answer["type"] == "subscribed", answer
                sockets[server.name, topic] = ws

        # Committed through REST, alternating the processes, interleaving the topics.
        for n in range(EVENTS_LIVE):
            for index, (user_id, token, _) in enumerate(users):
                server = a if (n + index) % 2 else b
                await asyncio.to_thread(rename_sync, server, user_id, token, f"live-{n}")

        last_offset: dict[str, str] = {}
        for (name, topic), ws in sockets.items():
            frames = [
                await ws.recv_event("user.updated", timeout=10, topic=topic)
                for _ in range(EVENTS_LIVE)
            ]
            assert [f["data"]["name"] for f in frames] == [f"live-{n}" for n in range(EVENTS_LIVE)]
            assert [seq_of(f["offset"]) for f in frames] == list(range(1, EVENTS_LIVE + 1))
            assert last_offset.setdefault(topic, frames[-1]["offset"]) == frames[-1]["offset"]
            assert await ws.nothing(0.05), (name, topic)

        # Each instance holds the history and the fan-out of its own topics, and only those.
        for index, client in enumerate(clients):
            expected = {topic for _, _, topic in users if topic_shard(topic, 2) == index}
            assert len(expected) >= TOPICS_PER_SHARD
            assert topics_holding_history(client) == expected
            assert topics_with_fan_out(client) == expected

        # Disconnect everyone, commit more, reconnect with `since` on the other process.
        for ws in sockets.values():
            await ws.close()
        for n in range(EVENTS_MISSED):
            for index, (user_id, token, _) in enumerate(users):
                server = b if (n + index) % 2 else a
                await asyncio.to_thread(rename_sync, server, user_id, token, f"missed-{n}")
        for _, token, topic in users:
            for server in (b, a):
                again: WS = await open_ws(server, token)
                answer = await again.subscribe(topic, since=last_offset[topic])
                assert answer["recovered"] is True, answer
                assert seq_of(answer["offset"]) == EVENTS_LIVE + EVENTS_MISSED
                replayed = [await again.recv() for _ in range(EVENTS_MISSED)]
                assert [f["data"]["name"] for f in replayed] == [
                    f"missed-{n}" for n in range(EVENTS_MISSED)
                ]
                assert [seq_of(f["offset"]) for f in replayed] == list(
                    range(EVENTS_LIVE + 1, EVENTS_LIVE + EVENTS_MISSED + 1)
                )
                assert replayed[-1]["offset"] == answer["offset"]
                await again.close()
    finally:
        a.stop()
        b.stop()
        for instance in shards:
            instance.kill()
