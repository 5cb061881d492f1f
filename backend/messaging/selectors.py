"""Reads of the messaging area: rooms, chat messages, mail. Everything is scoped to the
actor in the query itself: rooms they are a member of, conversations they are a party to,
their own mail copies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.messaging.models import Mail, MailFolder, Message, Room, RoomMembership


def room_is_member(*, room_id: int, user_id: int) -> bool:
    return RoomMembership.objects.filter(room_id=room_id, user_id=user_id).exists()


# --- rooms ----------------------------------------------------------------------------------
def _rooms() -> QuerySet[Room]:
    return Room.objects.prefetch_related(
        Prefetch("memberships", queryset=RoomMembership.objects.order_by("user_id"))
    ).order_by("id")


def room_representation(room: Room) -> dict[str, Any]:
    """The room as ``GET /rooms/{id}`` shows it and as ``room.updated`` carries it."""
    return {
        "id": room.pk,
        "name": room.name,
        "member_ids": [membership.user_id for membership in room.memberships.all()],
        "created_by_id": room.created_by_id,
        "created_at": room.created_at,
    }


def room_get(*, room_id: int) -> Room:
    """A room by id, for services that checked the actor's access already."""
    return _rooms().get(pk=room_id)


def room_list_for_member(*, actor: User) -> QuerySet[Room]:
    return _rooms().filter(memberships__user=actor)


def room_get_for_member(*, actor: User, room_id: int) -> Room:
    """A room the actor is a member of; any other (or none) is 404."""
    room = room_list_for_member(actor=actor).filter(pk=room_id).first()
    if room is None:
        raise NotFound(detail="No such room.")
    return room


def room_members_with_presence(*, actor: User, room_id: int) -> list[dict[str, Any]]:
    """The members (id, name) and whether each has a socket subscribed to ``room.{id}``
    now (the realtime core's presence list, shared by every server process)."""
    from realtime.history import get_history

    room = room_get_for_member(actor=actor, room_id=room_id)
    online = set(get_history().presence_list(f"room.{room.pk}"))
    members = User.objects.filter(room_memberships__room=room).order_by("id")
    return [
        {"user_id": member.pk, "name": member.name, "online": member.pk in online}
        for member in members.only("id", "name")
    ]


# --- messages -------------------------------------------------------------------------------
def message_representation(message: Message) -> dict[str, Any]:
    """The message as the lists show it and as ``message.created`` carries it."""
    return {
        "id": message.pk,
        "sender_id": message.sender_id,
        "room_id": message.room_id,
        "recipient_id": message.recipient_id,
        "body": message.body,
        "created_at": message.created_at,
    }


@dataclass(frozen=True)
class MessagePage:
    """Newest first; ``next_before`` is the id to pass as ``before`` for older ones (None
    when there are none)."""

    items: list[Message]
    next_before: int | None


def _page_before(messages: QuerySet[Message], *, before: int | None, limit: int) -> MessagePage:
    if before is not None:
        messages = messages.filter(id__lt=before)
    rows = list(messages.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(items=rows, next_before=rows[-1].pk if more else None)


def room_messages(*, actor: User, room_id: int, before: int | None, limit: int) -> MessagePage:
    room = room_get_for_member(actor=actor, room_id=room_id)
    return _page_before(Message.objects.filter(room=room), before=before, limit=limit)


def direct_messages(
    *, actor: User, other_user_id: int, before: int | None, limit: int
) -> MessagePage:
    """The conversation between the actor and one other user (only its two parties can
    read it: the query is scoped to the actor)."""
    conversation = Message.objects.filter(
        Q(sender=actor, recipient_id=other_user_id) | Q(sender_id=other_user_id, recipient=actor)
    )
    return _page_before(conversation, before=before, limit=limit)


# --- mail -----------------------------------------------------------------------------------
def mail_representation(mail: Mail) -> dict[str, Any]:
    """The mail as ``GET /mails/{id}`` shows it and as its events carry it."""
    return {
        "id": mail.pk,
        "user_id": mail.user_id,
        "folder": mail.folder,
        "subject": mail.subject,
        "body": mail.body,
        "read_flag": mail.read_flag,
        "sender_id": mail.sender_id,
        "recipient_ids": list(mail.recipient_ids),
        "created_at": mail.created_at,
    }


def mail_list(
    *, actor: User, folder: str | None = None, search: str | None = None
) -> QuerySet[Mail]:
    """The actor's own copies, newest first; ``search`` matches the subject."""
    mails = Mail.objects.filter(user=actor).order_by("-id")
    if folder:
        mails = mails.filter(folder=folder)
    if search:
        mails = mails.filter(subject__icontains=search)
    return mails


def mail_get(*, actor: User, mail_id: int) -> Mail:
    """One of the actor's copies; anyone else's is 404 like a missing one."""
    mail = Mail.objects.filter(pk=mail_id, user=actor).first()
    if mail is None:
        raise NotFound(detail="No such mail.")
    return mail


def mail_unread_counts(*, user_id: int) -> dict[str, int]:
    """Unread copies per folder, every folder present (one grouped query)."""
    counts = dict.fromkeys(MailFolder.values, 0)
    rows = (
        Mail.objects.filter(user_id=user_id, read_flag=False)
        .values_list("folder")
        .annotate(unread=Count("id"))
        .order_by()
    )
    for folder, unread in rows:
        counts[folder] = unread
    return counts
