"""The history's promise, for the Redis store and the embedded one alike."""

import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from realtime.history import EMPTY_TOPIC_OFFSET, History, MemoryHistory, Offset, RedisHistory


@pytest.fixture
def redis_history() -> Iterator[RedisHistory]:
    """A Redis history of its own under this run's realtime prefix; its keys go at the end."""
    store = RedisHistory(
        settings.REDIS_URL, prefix=f"{settings.REALTIME_KEY_PREFIX}:history-{uuid.uuid4().hex[:8]}"
    )
    yield store
    keys = list(store.client.scan_iter(match=f"{store.prefix}:*", count=1000))
    if keys:
        store.client.delete(*keys)


@pytest.fixture(params=["redis", "memory"])
def history(request: pytest.FixtureRequest) -> History:
    if request.param == "redis":
        return request.getfixturevalue("redis_history")
    return MemoryHistory()


def test_offsets_are_consecutive_per_topic(history) -> None:
    first = history.append("user.1", "a", "{}")
    second = history.append("user.1", "b", "{}")
    other = history.append("user.2", "c", "{}")
    assert (first.seq, second.seq, other.seq) == (1, 2, 1)
    assert first.epoch == second.epoch
    assert history.latest("user.1") == second


def test_read_after_returns_the_missed_events_in_order(history) -> None:
    start = history.latest("room.1")
    for n in range(5):
        history.append("room.1", "message.created", f'{{"n":{n}}}')
    replay = history.read_after("room.1", start)
    assert replay.recovered
    assert [e.data_json for e in replay.events] == [f'{{"n":{n}}}' for n in range(5)]
    assert replay.latest.seq == 5


def test_many_reads_answer_each_read_as_read_after_would(history) -> None:
    """The reconnect storm's batched reads: one answer per read, in order, repeats included."""
    start = history.latest("room.2")
    offsets = [history.append("room.2", "message.created", f'{{"n":{n}}}') for n in range(4)]
    history.append("room.3", "message.created", "{}")
    after_two = offsets[1]
    reads = [
        ("room.2", start, None),
        ("room.2", after_two, 1),
        ("room.3", Offset("stale", 1), None),
        ("room.2", start, None),
    ]
    answers = history.read_after_many(reads)
    assert answers == [history.read_after(topic, since, limit) for topic, since, limit in reads]
    assert [e.seq for e in answers[1].events] == [3]
    assert not answers[2].recovered


def test_subscribing_before_the_first_event_recovers_everything(history) -> None:
    assert history.latest("user.9").seq == 0
    history.append("user.9", "x", "{}")
    replay = history.read_after("user.9", EMPTY_TOPIC_OFFSET)
    assert replay.recovered and len(replay.events) == 1


@override_settings(REALTIME_HISTORY_SIZE=3)
def test_gap_older_than_retention_is_not_recovered(history) -> None:
    start = history.append("user.1", "a", "{}")
    for _ in range(5):
        history.append("user.1", "b", "{}")
    replay = history.read_after("user.1", start)
    assert replay.recovered is False
    assert replay.events == []
    recent = history.read_after("user.1", Offset(start.epoch, 4))
    assert recent.recovered and [e.seq for e in recent.events] == [5, 6]


def test_wrong_epoch_or_future_offset_is_not_recovered(history) -> None:
    latest = history.append("user.1", "a", "{}")
    assert history.read_after("user.1", Offset("other", 0)).recovered is False
    assert history.read_after("user.1", Offset(latest.epoch, 99)).recovered is False


def test_offset_parsing_rejects_garbage() -> None:
    assert Offset.parse("abc:12") == Offset("abc", 12)
    for bad in ["", "12", "abc:", ":3", "abc:-1", "abc:1x", 12, None, "x" * 100 + ":1"]:
        assert Offset.parse(bad) is None


def test_presence_counts_connections_per_user(history) -> None:
    assert history.presence_join("room.1", 7, "c1") is True
    assert history.presence_join("room.1", 7, "c2") is False
    assert history.presence_join("room.1", 8, "c3") is True
    assert history.presence_list("room.1") == [7, 8]
    assert history.presence_leave("room.1", 7, "c1") is False
    assert history.presence_leave("room.1", 7, "c2") is True
    assert history.presence_list("room.1") == [8]


def test_redis_history_restarts_with_a_new_epoch_after_it_is_lost(
    redis_history: RedisHistory,
) -> None:
    history = redis_history
    old = history.append("user.1", "a", "{}")
    history.client.delete(history._meta("user.1"), history._stream("user.1"))
    new = history.append("user.1", "a", "{}")
    assert new.seq == 1 and new.epoch != old.epoch
    assert history.read_after("user.1", old).recovered is False


@override_settings(PRESENCE_TTL=0)
def test_presence_of_a_dead_process_expires_and_is_reported_once(history) -> None:
    history.presence_join("room.2", 7, "dead-conn")
    history.presence_join("room.2", 8, "dead-conn-2")
    with override_settings(PRESENCE_TTL=60):
        history.presence_join("room.2", 8, "live-conn")  # user 8 is still online elsewhere
    assert history.presence_expire("room.2") == [7]
    assert history.presence_expire("room.2") == []  # a second sweeper reports nothing
    assert history.presence_list("room.2") == [8]
    # Leaving after one's entry expired is not a second departure.
    assert history.presence_leave("room.2", 7, "dead-conn") is False
