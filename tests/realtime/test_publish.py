"""publish(): nothing for a rolled-back change, everything for a committed one, even after
a crash between COMMIT and the relay."""

import asyncio
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction

from realtime.history import get_history
from realtime.models import OutboxEvent
from realtime.publish import publish, sweep_outbox
from tests.factories import UserFactory, bearer_for
from tests.realtime.conftest import run_sync, run_writers

pytestmark = pytest.mark.django_db(transaction=True)


# Each test works on topics of its own and looks only at their rows: outbox rows another test
# (or a server process of the run) left behind, and other sweepers, change nothing here.
def fresh_topic() -> str:
    return f"user.{uuid.uuid4().int % 10**9 + 10**9}"


def unrelayed(topic: str) -> int:
    return OutboxEvent.objects.filter(topic=topic, relayed_at__isnull=True).count()


def test_rolled_back_change_leaves_no_event() -> None:
    topic = fresh_topic()
    before = get_history().latest(topic)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        publish(topic, "user.updated", {"x": 1})
        raise Boom
    assert not OutboxEvent.objects.filter(topic=topic).exists()
    assert get_history().latest(topic) == before


def test_committed_event_is_relayed_on_commit() -> None:
    topic = fresh_topic()
    before = get_history().latest(topic)
    with transaction.atomic():
        publish(topic, "user.updated", {"x": 1})
        # Not before the commit.
        assert get_history().latest(topic) == before
    row = OutboxEvent.objects.get(topic=topic)
    assert row.relayed_at is not None
    latest = get_history().latest(topic)
    assert latest.seq == before.seq + 1 and row.offset == str(latest)


def test_sweeper_relays_what_a_crash_left_behind() -> None:
    # A crash after COMMIT, before on_commit: the row exists, unrelayed.
    topic = fresh_topic()
    row = OutboxEvent.objects.create(topic=topic, event="user.updated", payload='{"n":1}')
    OutboxEvent.objects.filter(pk=row.pk).update(created_at=row.created_at - timedelta(minutes=1))
    before = get_history().latest(topic)
    assert sweep_outbox() >= 1
    assert unrelayed(topic) == 0
    sweep_outbox()  # a second pass sends nothing again
    replay = get_history().read_after(topic, before)
    assert [e.data_json for e in replay.events] == ['{"n":1}']


def test_sweeper_leaves_fresh_rows_to_their_on_commit_relay() -> None:
    topic = fresh_topic()
    OutboxEvent.objects.create(topic=topic, event="user.updated", payload="{}")
    sweep_outbox()
    assert unrelayed(topic) == 1


async def test_swept_event_reaches_a_subscribed_socket(open_socket) -> None:
    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.subscribe(f"user.{user.pk}")
    await run_sync(
        OutboxEvent.objects.create,
        topic=f"user.{user.pk}",
        event="user.updated",
        payload='{"swept":true}',
    )
    assert await run_sync(sweep_outbox, older_than=timedelta(0)) >= 1
    assert await run_sync(unrelayed, f"user.{user.pk}") == 0
    event = await socket.recv()
    assert event["data"] == {"swept": True}


async def test_hub_repairs_events_the_layer_lost(open_socket) -> None:
    """An event appended to history but never fanned out (a layer reconnect dropped it)
    reaches the socket through the hub's sync pass, in order, before the next live one."""
    from realtime.hub import get_hub

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.subscribe(f"user.{user.pk}")
    topic = f"user.{user.pk}"
    await asyncio.to_thread(get_history().append, topic, "user.updated", '{"lost":1}')
    hub = await get_hub()
    await hub.sync_once()  # notices the topic is ahead
    assert await socket.nothing(0.2)  # might still be in flight: waits one pass
    await hub.sync_once()
    event = await socket.recv()
    assert event["data"] == {"lost": 1}


async def test_hub_fills_a_gap_when_a_later_event_arrives_first(open_socket) -> None:
    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    topic = f"user.{user.pk}"
    await socket.subscribe(topic)
    await asyncio.to_thread(get_history().append, topic, "user.updated", '{"n":1}')
    await run_sync(publish, topic, "user.updated", {"n": 2})
    first, second = await socket.recv(), await socket.recv()
    assert [first["data"], second["data"]] == [{"n": 1}, {"n": 2}]
    assert int(second["offset"].split(":")[1]) == int(first["offset"].split(":")[1]) + 1


def _seq(row: OutboxEvent) -> int:
    return int(row.offset.rpartition(":")[2])


def test_a_new_event_goes_out_after_the_older_unrelayed_ones_of_its_topic() -> None:
    """Rows a failed relay left behind (a Redis outage) are relayed first, in commit order,
    by the next relay of their topic: offsets follow commit order."""
    topic = fresh_topic()
    stranded = [
        OutboxEvent.objects.create(topic=topic, event="user.updated", payload=f'{{"n":{n}}}')
        for n in (1, 2, 3)
    ]
    other = OutboxEvent.objects.create(topic=fresh_topic(), event="user.updated", payload="{}")
    before = get_history().latest(topic)
    with transaction.atomic():
        publish(topic, "user.updated", {"n": 4})
    replay = get_history().read_after(topic, before)
    assert [e.data_json for e in replay.events] == ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']
    rows = list(OutboxEvent.objects.filter(topic=topic).order_by("id"))
    assert [r.pk for r in rows[:3]] == [r.pk for r in stranded]
    assert all(r.relayed_at for r in rows)
    assert [_seq(r) for r in rows] == [before.seq + n for n in (1, 2, 3, 4)]
    # Another topic's stranded row is the sweeper's business, not this relay's.
    other.refresh_from_db()
    assert other.relayed_at is None


def test_concurrent_relays_of_one_topic_keep_commit_order() -> None:
    """Writers in several threads commit to one topic at once; every row is relayed once, and
    each writer's events (committed one after another) get growing offsets. Ids need not: a
    row with a lower id may commit after one with a higher id."""
    topic = fresh_topic()

    def write(index: int) -> None:
        for n in range(15):
            with transaction.atomic():
                publish(topic, "user.updated", {"w": index, "n": n})

    run_writers(4, write)
    rows = list(OutboxEvent.objects.filter(topic=topic).order_by("id"))
    assert len(rows) == 60
    assert all(r.relayed_at for r in rows)
    assert len({_seq(r) for r in rows}) == 60
    for index in range(4):
        seqs = [_seq(r) for r in rows if json.loads(r.payload)["w"] == index]
        assert len(seqs) == 15 and seqs == sorted(seqs)


def test_sweeper_relays_a_topics_rows_in_order_and_other_topics_too() -> None:
    old = timedelta(minutes=1)
    first, second = fresh_topic(), fresh_topic()
    rows = [
        OutboxEvent.objects.create(topic=topic, event="user.updated", payload=f'{{"n":{n}}}')
        for topic in (first, second)
        for n in (1, 2)
    ]
    OutboxEvent.objects.filter(pk__in=[r.pk for r in rows]).update(
        created_at=rows[0].created_at - old
    )
    # A fresh row behind an old one of its topic goes out with it, after it.
    OutboxEvent.objects.create(topic=first, event="user.updated", payload='{"n":3}')
    befores = {t: get_history().latest(t) for t in (first, second)}
    assert sweep_outbox() >= 5
    assert unrelayed(first) == unrelayed(second) == 0
    assert [e.data_json for e in get_history().read_after(first, befores[first]).events] == [
        '{"n":1}',
        '{"n":2}',
        '{"n":3}',
    ]
    assert len(get_history().read_after(second, befores[second]).events) == 2


def test_a_relay_does_not_wait_for_an_uncommitted_change_of_its_topic() -> None:
    """A transaction still open with an event of the topic does not hold up the relay of a
    committed one (row locks made relays wait on such rows, and under load those waits
    deadlocked with the services' inserts); the open one goes out when it commits, after."""
    import threading

    from django.db import connection as thread_connection

    topic = f"user.{uuid.uuid4().int % 10**12 + 1}"
    inserted, release, done = threading.Event(), threading.Event(), threading.Event()

    def slow_change() -> None:
        try:
            with transaction.atomic():
                publish(topic, "user.updated", {"n": "slow"})
                inserted.set()
                release.wait(10)
        finally:
            thread_connection.close()
            done.set()

    worker = threading.Thread(target=slow_change)
    worker.start()
    assert inserted.wait(10)
    before = get_history().latest(topic)
    started = time.monotonic()
    with transaction.atomic():
        publish(topic, "user.updated", {"n": "fast"})
    assert time.monotonic() - started < 2  # relayed without waiting for the open transaction
    assert [e.data_json for e in get_history().read_after(topic, before).events] == ['{"n":"fast"}']
    release.set()
    assert done.wait(10)
    worker.join(10)
    events = get_history().read_after(topic, before).events
    assert [e.data_json for e in events] == ['{"n":"fast"}', '{"n":"slow"}']
    assert OutboxEvent.objects.filter(topic=topic, relayed_at__isnull=True).count() == 0


async def test_a_busy_hub_holds_events_and_writes_them_together_in_order(
    open_socket, monkeypatch
) -> None:
    """While the previous batch's cost has not passed since it was written, new events wait
    and go out together, in order (one write per socket under uvicorn); none is lost."""
    from realtime import hub as hub_module

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    topic = f"user.{user.pk}"
    await socket.subscribe(topic)
    hub = await hub_module.get_hub()
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(hub_module, "FAN_OUT_HOLD_MAX", 2.0)
    held_from = hub._flushed_at = loop.time()
    hub._flush_cost = 5.0  # as if a long batch had just ended: the cap (2 s) applies
    for n in range(3):
        await run_sync(publish, topic, "user.updated", {"n": n})
    deadline = time.monotonic() + 1.5
    while len(hub._batch) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(hub._batch) == 3
    assert await socket.nothing(0.1)  # still held
    events = [await socket.recv(timeout=4) for _ in range(3)]
    assert [event["data"] for event in events] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert loop.time() >= held_from + 2.0
    # Once quiet again (nothing written for longer than the last batch cost), no hold.
    hub._flushed_at, hub._flush_cost = loop.time() - 1.0, 0.5
    await run_sync(publish, topic, "user.updated", {"n": 3})
    assert (await socket.recv(timeout=1))["data"] == {"n": 3}


async def test_an_event_that_comes_while_a_batch_is_written_is_not_stranded(
    open_socket, monkeypatch
) -> None:
    """The next event of a burst can reach the hub after a flush wrote its batch and before
    the flush's end was recorded; it goes out then (it waited for a later event before)."""
    from realtime import hub as hub_module

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    topic = f"user.{user.pk}"
    await socket.subscribe(topic)
    hub = await hub_module.get_hub()
    state = hub.topics[topic]
    loop = asyncio.get_running_loop()
    flush = hub._flush
    injected = []

    def flush_as_the_next_event_comes() -> None:
        if not injected:
            # Queued ahead of the flush's own end-of-flush callback, as a burst's next event is.
            frame = hub_module.event_frame(topic, "user.typing", None, '{"n":1}')
            loop.call_soon(hub._fan_out, state, None, frame)
            injected.append(frame)
        flush()

    monkeypatch.setattr(hub, "_flush", flush_as_the_next_event_comes)
    await run_sync(publish, topic, "user.updated", {"n": 0})
    assert (await socket.recv(timeout=2))["data"] == {"n": 0}
    assert injected
    assert (await socket.recv(timeout=2))["data"] == {"n": 1}


async def test_a_socket_whose_delivery_fails_costs_the_others_nothing(
    open_socket, monkeypatch
) -> None:
    from realtime import hub as hub_module

    user = await run_sync(UserFactory)
    token = await run_sync(bearer_for, user)
    topic = f"user.{user.pk}"
    sockets = [await open_socket(token) for _ in range(3)]
    for socket in sockets:
        await socket.subscribe(topic)
    hub = await hub_module.get_hub()
    failing = next(iter(hub.topics[topic].subscribers))

    def deliver_fails(*args: object) -> None:
        raise RuntimeError("a socket's delivery failed")

    monkeypatch.setattr(failing, "deliver", deliver_fails)
    await run_sync(publish, topic, "user.updated", {"n": 1})
    got = [socket for socket in sockets if not await socket.nothing(0.5)]
    assert len(got) == 2
    for socket in got:
        assert (await socket.recv())["data"] == {"n": 1}
