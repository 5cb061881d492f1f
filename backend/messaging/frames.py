"""Client frames of the chat: ``typing`` and ``message.send``."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from pydantic import BaseModel, Field

from backend.core.errors import PermissionDenied
from backend.messaging import services
from realtime.frames import FrameContext, frame_handler
from realtime.publish import publish_transient
from realtime.topics import authorize_topic


class TypingPayload(BaseModel):
    # strict: "5" and true are not room ids.
    room_id: int = Field(gt=0, strict=True)


def _check_member(ctx: FrameContext, topic: str) -> None:
    authorize_topic(ctx.user(), topic)


@frame_handler("typing", schema=TypingPayload)
async def typing(ctx: FrameContext, payload: TypingPayload) -> None:
    """Relayed to the room's other members with offset null; never stored, never echoed to
    its sender. Members only: a subscribed socket was authorized already (and is re-checked
    when rights change); any other is checked now."""
    topic = f"room.{payload.room_id}"
    if not ctx.is_subscribed(topic):
        await database_sync_to_async(_check_member)(ctx, topic)
    await publish_transient(
        topic, "typing", {"room_id": payload.room_id, "user_id": ctx.user_id}, sender_id=ctx.user_id
    )


class MessageSendPayload(BaseModel):
    """``message.send``: exactly one of ``room_id`` and ``recipient_id`` (checked by the
    service, which REST shares)."""

    # strict: "5" and true are not ids.
    room_id: int | None = Field(None, gt=0, lt=2**63, strict=True)
    recipient_id: int | None = Field(None, gt=0, lt=2**63, strict=True)
    body: str = Field(strict=True)
    client_msg_id: str | None = Field(None, strict=True)


@frame_handler("message.send", schema=MessageSendPayload)
def message_send(ctx: FrameContext, payload: MessageSendPayload) -> dict[str, Any]:
    """Store (once per client_msg_id) and ack with the message id; a retry gets the same
    ack. Runs in a thread: the service queries the database."""
    user = ctx.user()
    if user is None:
        raise PermissionDenied(detail="unknown user")
    sent = services.message_send(
        actor=user,
        body=payload.body,
        room_id=payload.room_id,
        recipient_id=payload.recipient_id,
        client_msg_id=payload.client_msg_id,
    )
    return {"type": "ack", "client_msg_id": payload.client_msg_id, "message_id": sent.message.pk}
