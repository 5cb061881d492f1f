"""A change that publishes to several topics is relayed in one pass after its commit."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from realtime.history import get_history
from realtime.models import OutboxEvent
from realtime.publish import publish
from tests.realtime.conftest import run_writers

pytestmark = pytest.mark.django_db(transaction=True)


def fresh_topic() -> str:
    return f"user.{uuid.uuid4().int % 10**9 + 10**9}"


def _seq(row: OutboxEvent) -> int:
    return int(row.offset.rpartition(":")[2])


def test_two_topics_of_one_commit_take_one_lock_statement_one_read_one_update() -> None:
    first, second = fresh_topic(), fresh_topic()
    befores = {topic: get_history().latest(topic) for topic in (first, second)}
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        publish(first, "order.status_changed", {"n": 1})
        publish(second, "order.status_changed", {"n": 1})
        publish(first, "order.status_changed", {"n": 2})
    statements = [q["sql"] for q in queries.captured_queries]
    # After COMMIT: both locks in one statement, one read, one update, the release. (One pass
    # per topic took four statements and a commit each.)
    relay = statements[statements.index("COMMIT") + 1 :]
    assert [s.split("(")[0].split(" `")[0] for s in relay] == [
        "SELECT GET_LOCK",
        "SELECT",
        "UPDATE",
        "SELECT RELEASE_LOCK",
    ], relay
    assert relay[0].count("GET_LOCK(") == 2 and relay[3].count("RELEASE_LOCK(") == 2

    rows = list(OutboxEvent.objects.filter(topic__in=[first, second]).order_by("id"))
    assert all(row.relayed_at for row in rows)
    by_topic = {
        topic: [e.data_json for e in get_history().read_after(topic, befores[topic]).events]
        for topic in (first, second)
    }
    assert by_topic == {first: ['{"n":1}', '{"n":2}'], second: ['{"n":1}']}
    # Each row carries its own topic's offset.
    assert [_seq(r) for r in rows if r.topic == first] == [
        befores[first].seq + 1,
        befores[first].seq + 2,
    ]
    assert [_seq(r) for r in rows if r.topic == second] == [befores[second].seq + 1]


def test_a_rolled_back_savepoints_topic_sends_nothing_and_blocks_nothing() -> None:
    kept, dropped = fresh_topic(), fresh_topic()
    before = get_history().latest(dropped)
    with transaction.atomic():
        publish(kept, "user.updated", {"n": 1})
        try:
            with transaction.atomic():
                publish(dropped, "user.updated", {"n": "gone"})
                raise RuntimeError("the savepoint rolls back")
        except RuntimeError:
            pass
    assert OutboxEvent.objects.filter(topic=kept, relayed_at__isnull=True).count() == 0
    assert not OutboxEvent.objects.filter(topic=dropped).exists()
    assert get_history().read_after(dropped, before).events == []
    # The next change of the dropped topic goes out as usual.
    with transaction.atomic():
        publish(dropped, "user.updated", {"n": 2})
    assert [e.data_json for e in get_history().read_after(dropped, before).events] == ['{"n":2}']


def test_writers_taking_the_same_topics_in_opposite_orders_all_get_relayed() -> None:
    """Relays lock their topics in one fixed order, whatever order the change published in:
    no relay waits on another in a cycle, and every row goes out once. Offsets follow commit
    order, which ids need not (another writer's row with a lower id may commit later), so
    order is checked per writer, whose changes commit one after another."""
    first, second = fresh_topic(), fresh_topic()

    def write(index: int) -> None:
        order = (first, second) if index % 2 else (second, first)
        for n in range(10):
            with transaction.atomic():
                for topic in order:
                    publish(topic, "user.updated", {"w": index, "n": n})

    run_writers(4, write)
    for topic in (first, second):
        rows = list(OutboxEvent.objects.filter(topic=topic).order_by("id"))
        assert len(rows) == 40 and all(r.relayed_at for r in rows)
        assert len({_seq(r) for r in rows}) == 40
        for index in range(4):
            seqs = [_seq(r) for r in rows if json.loads(r.payload)["w"] == index]
            assert len(seqs) == 10 and seqs == sorted(seqs)
