"""Several realtime Redis instances: each topic on one, the same one as its fan-out."""

from __future__ import annotations

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from realtime.history import Offset, RedisHistory, ShardedRedisHistory, topic_group, topic_shard
from tests.e2e.conftest import PrivateRedis

TOPICS = [f"user.{n}" for n in range(1, 200)] + [f"room.{n}" for n in range(1, 200)] + ["online"]


@pytest.mark.parametrize("shard_count", [1, 2, 3, 5, 8])
async def test_a_topic_history_lives_where_the_pubsub_layer_sends_its_group(
    shard_count: int,
) -> None:
    # The real layer (this loop's), configured as the settings configure it; nothing connects.
    layer = RedisPubSubChannelLayer(
        hosts=[f"redis://127.0.0.1:1/{n}" for n in range(shard_count)],
        prefix=settings.CHANNEL_LAYER_PREFIX,
    )._get_layer()
    for topic in TOPICS:
        shard = layer._get_shard(layer._get_group_channel_name(topic_group(topic)))
        assert layer._shards.index(shard) == topic_shard(topic, shard_count), topic


def test_topics_spread_over_every_shard() -> None:
    counts = [0, 0, 0]
    for topic in TOPICS:
        counts[topic_shard(topic, 3)] += 1
    assert min(counts) > len(TOPICS) / 6, counts


def test_sharded_history_keeps_each_topic_whole_on_its_own_instance(
    two_redis: tuple[PrivateRedis, PrivateRedis],
) -> None:
    urls = [two_redis[0].url, two_redis[1].url]
    history = ShardedRedisHistory(urls, prefix="shard-test:rt")
    topics = [f"user.{n}" for n in range(1, 21)]
    for round_ in range(3):
        for topic in topics:
            assert history.append(topic, "e", f'{{"n":{round_}}}').seq == round_ + 1

    clients = [redis.Redis.from_url(url, decode_responses=True) for url in urls]
    for index, client in enumerate(clients):
        held = {key.split("{", 1)[1].split("}", 1)[0] for key in client.scan_iter("shard-test:*")}
        assert held == {t for t in topics if topic_shard(t, 2) == index}
        assert held, "every instance holds some topics"

    latest = history.latest_seqs(topics)
    assert {offset.seq for offset in latest.values()} == {3}
    # Replay reads the topic's own instance: the same events, in order, as one Redis gives.
    single = RedisHistory(urls[topic_shard(topics[0], 2)], prefix="shard-test:rt")
    since = Offset(latest[topics[0]].epoch, 1)
    replay = history.read_after(topics[0], since)
    assert replay.recovered and [e.seq for e in replay.events] == [2, 3]
    assert replay == single.read_after(topics[0], since)

    assert history.presence_join("room.7", 1, "c1") is True
    history.presence_refresh([("room.7", 1, "c1"), ("room.8", 2, "c2")])
    assert history.presence_list("room.7") == [1] and history.presence_list("room.8") == [2]
    history.online_add(5, "c5")
    assert history.online_users() == {5}
    history.online_refresh([(6, "c6"), (7, "c7")])
    history.online_remove_many([(5, "c5"), (6, "c6")])
    assert history.online_users() == {7}
    assert history.ping()

    # A reconnect storm's batched reads: each answered by its topic's own instance.
    reads = [(topic, Offset(latest[topic].epoch, 1), None) for topic in topics]
    assert history.read_after_many(reads) == [history.read_after(*read) for read in reads]


def test_sync_pass_still_answers_for_the_instances_that_are_up(
    two_redis: tuple[PrivateRedis, PrivateRedis],
) -> None:
    history = ShardedRedisHistory([r.url for r in two_redis], prefix="shard-test:rt")
    topics = [f"user.{n}" for n in range(1, 21)]
    for topic in topics:
        history.append(topic, "e", "{}")
    two_redis[1].kill()
    latest = history.latest_seqs(topics)
    assert set(latest) == {t for t in topics if topic_shard(t, 2) == 0}
    assert {offset.seq for offset in latest.values()} == {1}
    two_redis[0].kill()
    with pytest.raises(redis.ConnectionError):
        history.latest_seqs(topics)
