"""The one way events leave the system.

``publish(topic, event, data)`` is called by services inside their transaction: it writes an
outbox row there, and ``on_commit`` relays it (history append, then one channel-layer
``group_send`` to the topic's group, which each server process's hub joined once). A crash
between COMMIT and the hook (or a Redis outage) leaves the row unrelayed; :func:`sweep_outbox`
(a Celery beat job) relays it later. Nothing else in the code base sends events to the channel
layer; `realtime/layer.py` is how sync code sends to it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NamedTuple

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from backend.core import lean
from realtime.history import History, Offset, get_history, topic_group
from realtime.layer import group_send_sync
from realtime.models import OutboxEvent

logger = logging.getLogger(__name__)

CONTROL_GROUP = "rt.control"


def serialize(data: Any) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def publish(topic: str, event: str, data: dict[str, Any]) -> None:
    """Record an event in the caller's transaction; it is delivered once that commits.

    Outside a transaction (autocommit) the row is committed and relayed at once.
    """
    OutboxEvent.objects.create(topic=topic, event=event, payload=serialize(data))
    _pending_topics().setdefault(topic)
    transaction.on_commit(_relay_after_commit)


# Topics this thread published to since its last relay. A change usually publishes to
# several (an order's status: the order's topic and its owner's), and the first on-commit
# hook of the transaction relays them all in one pass (one lock statement, one read, one
# update) instead of one pass per topic. A topic whose rows were rolled back stays here until
# the next relay, which finds nothing of it to send.
_pending = threading.local()


def _pending_topics() -> dict[str, None]:
    topics: dict[str, None] | None = getattr(_pending, "topics", None)
    if topics is None:
        topics = _pending.topics = {}
    return topics


def _relay_after_commit() -> None:
    topics = list(_pending_topics())
    if not topics:
        return  # an earlier hook of the same commit relayed them
    _pending_topics().clear()
    try:
        relay_topics(topics)
    except Exception:
        # The change is committed and the caller must not fail over its event (a lock wait
        # timeout, a lost database connection): the sweeper relays the rows.
        logger.exception("relay failed; the outbox sweeper will retry", extra={"topics": topics})


def event_message(topic: str, offset: Offset | None, event: str, data_json: str) -> dict[str, Any]:
    """What travels over the channel layer to every process's hub."""
    return {
        "type": "rt.event",
        "topic": topic,
        "epoch": offset.epoch if offset else None,
        "seq": offset.seq if offset else None,
        "event": event,
        "data": data_json,
    }


# Seconds an on-commit relay waits for another relay of the same topic before leaving its row
# to the next relay or the sweeper.
RELAY_LOCK_WAIT = 5


def _relay_lock_name(topic: str) -> str:
    # Names are at most 64 characters; topics may be longer.
    return "triton:relay:" + hashlib.sha1(topic.encode(), usedforsecurity=False).hexdigest()


@contextmanager
def _topic_relay_locks(topics: list[str]) -> Iterator[list[str]]:
    """One relay of a topic at a time, across processes; yields the topics whose lock was
    obtained.

    Named locks (MySQL/MariaDB ``GET_LOCK``) rather than row locks: a locking read of the
    topic's outbox rows waits on rows other transactions have inserted but not committed,
    and under load those waits formed deadlock cycles with the services' own inserts (MariaDB
    error 1213): the relay rolled back after the event was already in history, and the
    sweeper sent it again with a second offset. Named locks are taken by nothing else, and
    every relay takes its locks in the order of their names, so no cycle can form. SQLite
    (the embedded default) serializes its writers anyway; process-local locks order the
    relays of one process.
    """
    if connection.vendor == "mysql":
        names = {_relay_lock_name(topic): topic for topic in topics}
        ordered = sorted(names)
        with connection.cursor() as cursor:
            # One statement for all of them, evaluated left to right.
            cursor.execute(
                "SELECT " + ", ".join(["GET_LOCK(%s, %s)"] * len(ordered)),
                [value for name in ordered for value in (name, RELAY_LOCK_WAIT)],
            )
            results = cursor.fetchone()
        held = [name for name, result in zip(ordered, results, strict=True) if result == 1]
        try:
            yield [names[name] for name in held]
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT " + ", ".join(["RELEASE_LOCK(%s)"] * len(held)), held)
        return
    stripes = sorted({zlib.crc32(topic.encode()) % len(_local_relay_locks) for topic in topics})
    with contextlib.ExitStack() as stack:
        for stripe in stripes:
            stack.enter_context(_local_relay_locks[stripe])
        yield list(topics)


# Striped, so memory stays bounded however many topics a process relays; topics that share a
# stripe merely take turns (stripes are taken in order, and never twice by one thread).
_local_relay_locks: tuple[threading.Lock, ...] = tuple(threading.Lock() for _ in range(64))


def relay_topic(topic: str, *, batch: int = 500) -> int:
    """Relay the topic's unrelayed outbox rows, oldest first; how many were relayed."""
    return relay_topics([topic], batch=batch)


def relay_topics(topics: list[str], *, batch: int = 500) -> int:
    """Relay these topics' unrelayed outbox rows in one pass, oldest first; how many were
    relayed.

    Offsets follow commit order per topic: relays of one topic take turns (named locks, see
    :func:`_topic_relay_locks`) and each sends every committed unrelayed row of its topics in
    id order, so an event is never published ahead of an older unrelayed one of its topic
    (rows a Redis outage left behind go out before the change that follows the outage). A
    topic's first failure stops that topic; what is left waits for the next relay or the
    sweeper. The rows the history took are marked relayed in one statement at the end of the
    pass. At least once: a crash between the appends and the mark makes the next relay send
    those events again with new offsets.
    """
    history = get_history()
    if not history.shared and not _serves_sockets():
        # Embedded default, and this process (a shell, a worker) has no sockets: its private
        # history and layer reach no one. The server process's own sweeper relays the rows.
        return 0
    with _topic_relay_locks(topics) as held:
        for topic in topics:
            if topic not in held:
                logger.warning("relay of %s is busy; the next relay or the sweeper sends it", topic)
        if not held:
            return 0
        rows = _unrelayed_rows(held, batch)
        stopped: set[str] = set()
        offsets: dict[int, str] = {}
        for row in rows:
            if row.topic in stopped:
                continue
            offset = _relay_row(history, row)
            if offset is None:
                stopped.add(row.topic)
                continue
            offsets[row.id] = str(offset)
        if offsets:
            _mark_relayed(offsets)
    return len(offsets)


# The relay runs after every change that publishes, so its read and its update are written
# once per process rather than built by the ORM each time: building and compiling them cost
# more CPU than the rest of the relay (profiled on `PATCH /users/{id}`, docs/benchmarks.md).
class _UnrelayedRow(NamedTuple):
    id: int
    topic: str
    event: str
    payload: str


@functools.lru_cache(maxsize=64)  # per number of topics: a transaction's few
def _unrelayed_sql(vendor: str, topics: int) -> str:
    column = functools.partial(lean.column_name, OutboxEvent)
    # Names come from the model's metadata; values travel as parameters.
    return (
        f"SELECT {', '.join(column(name) for name in _UnrelayedRow._fields)} "  # noqa: S608
        f"FROM {lean.table_name(OutboxEvent)} "
        f"WHERE {column('topic')} IN ({', '.join(['%s'] * topics)}) "
        f"AND {column('relayed_at')} IS NULL ORDER BY {column('id')} LIMIT %s"
    )


@functools.lru_cache(maxsize=64)  # per number of rows: a relay's few
def _mark_relayed_sql(vendor: str, rows: int) -> str:
    column = functools.partial(lean.column_name, OutboxEvent)
    return (
        f"UPDATE {lean.table_name(OutboxEvent)} SET {column('relayed_at')} = %s, "  # noqa: S608
        f"{column('offset')} = CASE {column('id')} {' '.join(['WHEN %s THEN %s'] * rows)} END "
        f"WHERE {column('id')} IN ({', '.join(['%s'] * rows)})"
    )


def _unrelayed_rows(topics: list[str], batch: int) -> list[_UnrelayedRow]:
    """These topics' unrelayed outbox rows, oldest first (at most ``batch``)."""
    with connection.cursor() as cursor:
        cursor.execute(_unrelayed_sql(connection.vendor, len(topics)), [*topics, batch])
        return [_UnrelayedRow(*row) for row in cursor.fetchall()]


def _mark_relayed(offsets: dict[int, str]) -> None:
    """One statement: every row relayed now, each with its own offset."""
    params: list[Any] = [connection.ops.adapt_datetimefield_value(timezone.now())]
    for pk, text in offsets.items():
        params += [pk, text]
    with connection.cursor() as cursor:
        cursor.execute(_mark_relayed_sql(connection.vendor, len(offsets)), [*params, *offsets])


def _relay_row(history: History, row: _UnrelayedRow) -> Offset | None:
    """Append to the topic's history, then fan out; the offset once the history has it."""
    try:
        offset = history.append(row.topic, row.event, row.payload)
    except Exception:
        # The change is committed; a later relay or the sweeper delivers the event.
        logger.exception("relay failed; the outbox sweeper will retry", extra={"outbox_id": row.id})
        return None
    try:
        group_send_sync(
            topic_group(row.topic), event_message(row.topic, offset, row.event, row.payload)
        )
    except Exception:
        # In the history already: every hub's sync pass finds it there and delivers it.
        logger.warning("fan-out failed; hubs repair from history", extra={"outbox_id": row.id})
    return offset


def _serves_sockets() -> bool:
    from realtime.hub import hub_running

    return hub_running()


def sweep_outbox(*, older_than: timedelta | None = None, batch: int = 500) -> int:
    """Relay rows whose on_commit hook never ran or failed (crash, Redis outage), topic by
    topic in commit order. Returns how many."""
    older_than = (
        older_than if older_than is not None else timedelta(seconds=settings.OUTBOX_RELAY_DELAY)
    )
    cutoff = timezone.now() - older_than
    topics = list(
        OutboxEvent.objects.filter(relayed_at__isnull=True, created_at__lte=cutoff)
        .order_by()
        .values_list("topic", flat=True)
        .distinct()[:batch]
    )
    relayed = sum(relay_topic(topic, batch=batch) for topic in topics)
    OutboxEvent.objects.filter(relayed_at__lt=timezone.now() - timedelta(hours=1)).delete()
    if relayed:
        logger.warning("outbox sweeper relayed %d stranded events", relayed)
    return relayed


async def publish_ephemeral(topic: str, event: str, data: dict[str, Any]) -> None:
    """Socket-born state with no database row (presence): history and fan-out, no outbox."""
    import asyncio

    data_json = serialize(data)
    offset = await asyncio.to_thread(get_history().append, topic, event, data_json)
    layer = get_channel_layer()
    await layer.group_send(topic_group(topic), event_message(topic, offset, event, data_json))


async def publish_transient(
    topic: str, event: str, data: dict[str, Any], *, sender_id: int
) -> None:
    """Fire-and-forget (typing): not stored, no offset, not replayed, not sent to its sender."""
    message = event_message(topic, None, event, serialize(data))
    message["sender_id"] = sender_id
    await get_channel_layer().group_send(topic_group(topic), message)


def _control_on_commit(message: dict[str, Any]) -> None:
    """Broadcast a control message to every server process's hub once the caller commits.

    Control messages are not events: a lost one is logged, and each hub's periodic token
    check (``REALTIME_TOKEN_RECHECK_INTERVAL``) catches a missed revocation."""

    def send() -> None:
        try:
            group_send_sync(CONTROL_GROUP, message)
        except Exception:
            logger.exception("could not broadcast %s", message["type"])

    transaction.on_commit(send)


def reauthorize_user(user_id: int) -> None:
    """After a change of the user's rights commits, every process re-checks that user's
    subscriptions and ends those no longer allowed (``unsubscribed`` with a reason)."""
    _control_on_commit({"type": "rt.reauthorize", "user_id": user_id})


def disconnect_tokens(token_ids: list[int]) -> None:
    """Close, on every server process, the sockets authenticated with these tokens (4401).

    Called inside the revoking transaction; acts once it commits."""
    _control_on_commit({"type": "rt.revoke", "token_ids": list(token_ids)})
