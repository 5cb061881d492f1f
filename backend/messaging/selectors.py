"""Reads of the messaging area."""

from __future__ import annotations

from backend.messaging.models import RoomMembership


def room_is_member(*, room_id: int, user_id: int) -> bool:
    return RoomMembership.objects.filter(room_id=room_id, user_id=user_id).exists()
