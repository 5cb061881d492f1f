"""Client frames of the chat: ``typing``."""

from __future__ import annotations

from channels.db import database_sync_to_async
from pydantic import BaseModel, Field

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
