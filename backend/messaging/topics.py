"""``room.{id}``: members only; presence is tracked for it."""

from __future__ import annotations

from typing import Any

from backend.accounts.models import User
from backend.messaging.selectors import room_is_member
from realtime.topics import TopicKind, register_topic_kind


def _authorize_room(user: User, room_id: int | None) -> bool:
    # A missing room and a room one is not in look the same: not_found leaks nothing.
    return room_id is not None and room_is_member(room_id=room_id, user_id=user.pk)


def _room_presence_data(room_id: int | None, user_id: int) -> dict[str, Any]:
    return {"room_id": room_id, "user_id": user_id}


register_topic_kind(
    TopicKind(
        name="room",
        authorize=_authorize_room,
        presence=True,
        presence_data=_room_presence_data,
    )
)
