"""The one way events leave the system.

``publish(topic, event, data)`` is called by services inside their transaction: it writes an
outbox row there, and ``on_commit`` relays it (history append, then one channel-layer
``group_send`` to the topic's group, which each server process's hub joined once). A crash
between COMMIT and the hook leaves the row unrelayed; :func:`sweep_outbox` (a Celery beat job)
relays it later. Nothing else in the code base talks to the channel layer.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from realtime.history import Offset, get_history
from realtime.models import OutboxEvent

logger = logging.getLogger(__name__)

CONTROL_GROUP = "rt.control"


def topic_group(topic: str) -> str:
    return f"rt.{topic}"


def serialize(data: Any) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def publish(topic: str, event: str, data: dict[str, Any]) -> None:
    """Record an event in the caller's transaction; it is delivered once that commits.

    Outside a transaction (autocommit) the row is committed and relayed at once.
    """
    row = OutboxEvent.objects.create(topic=topic, event=event, payload=serialize(data))
    transaction.on_commit(lambda: relay_outbox_event(row))


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


def _group_send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group, message)


def relay_outbox_event(row: OutboxEvent) -> Offset | None:
    """Append to the topic's history, fan out, mark relayed. At least once: a crash after
    the append and before the mark makes the sweeper send it again with a new offset."""
    history = get_history()
    if not history.shared and not _serves_sockets():
        # Embedded default, and this process (a shell, a worker) has no sockets: its private
        # history and layer reach no one. The server process's own sweeper relays the row.
        return None
    try:
        offset = history.append(row.topic, row.event, row.payload)
        _group_send(
            topic_group(row.topic), event_message(row.topic, offset, row.event, row.payload)
        )
    except Exception:
        # The change is committed; the sweeper will deliver the event when the layer is back.
        logger.exception("relay failed; the outbox sweeper will retry", extra={"outbox_id": row.pk})
        return None
    OutboxEvent.objects.filter(pk=row.pk).update(relayed_at=timezone.now(), offset=str(offset))
    return offset


def _serves_sockets() -> bool:
    from realtime.hub import hub_running

    return hub_running()


def sweep_outbox(*, older_than: timedelta | None = None, batch: int = 500) -> int:
    """Relay rows whose on_commit hook never ran (crash, relay error). Returns how many."""
    older_than = (
        older_than if older_than is not None else timedelta(seconds=settings.OUTBOX_RELAY_DELAY)
    )
    cutoff = timezone.now() - older_than
    relayed = 0
    with transaction.atomic():
        # skip_locked: two sweepers never relay the same rows.
        rows = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(relayed_at__isnull=True, created_at__lte=cutoff)
            .order_by("id")[:batch]
        )
        for row in rows:
            if relay_outbox_event(row) is not None:
                relayed += 1
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
            _group_send(CONTROL_GROUP, message)
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
