"""Writes of the messaging area: rooms and their members, chat messages, mail.

Mail rules: a user reads and changes only their own copies (anyone else's are 404). A copy
may move to archive or trash at any time, and back to the folder it was first filed in.

Room rules: only members read a room, post to it or see its presence. Any member may add
another active user; the room's creator may remove anyone but themselves; every other member
may remove only themselves (leave); the creator cannot leave (a room whose creator's account
is gone keeps its members). A removed user's live ``room.{id}`` subscriptions are ended once
the removal commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.accounts.models import User
from backend.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from backend.core.html import sanitize_html
from backend.messaging.access import require_chat_use, require_mail_use
from backend.messaging.models import (
    CLIENT_MSG_ID_MAX_LENGTH,
    MESSAGE_BODY_MAX_LENGTH,
    Mail,
    MailFolder,
    Message,
    Room,
    RoomMembership,
)
from backend.messaging.selectors import (
    mail_representation,
    mail_unread_counts,
    message_representation,
    room_get,
    room_get_for_member,
    room_representation,
)
from realtime.publish import publish, reauthorize_user


def _active_users(ids: list[int], *, loc: list[str | int]) -> list[User]:
    """These users, all active; 422 on ``loc`` when one is missing or inactive."""
    wanted = set(ids)
    users = list(User.objects.filter(pk__in=wanted, is_active=True))
    if len(users) != len(wanted):
        raise ValidationFailed(
            detail="Unknown or inactive user.",
            errors=[FieldError(loc=loc, msg="No such active user.")],
        )
    return users


def _publish_room_updated(room_id: int, *, also_user_ids: tuple[int, ...] = ()) -> None:
    """``room.updated`` with the room as GET shows it, to its members' topic and to users
    who joined or left (they are not, or no longer, subscribed to it)."""
    data = room_representation(room_get(room_id=room_id))
    publish(f"room.{room_id}", "room.updated", data)
    for user_id in also_user_ids:
        publish(f"user.{user_id}", "room.updated", data)


# --- rooms ----------------------------------------------------------------------------------
def room_create(*, actor: User, name: str, member_ids: list[int] | None = None) -> Room:
    require_chat_use(actor)
    others = _active_users(
        [pk for pk in dict.fromkeys(member_ids or []) if pk != actor.pk],
        loc=["body", "member_ids"],
    )
    with transaction.atomic():
        room = Room.objects.create(name=name, created_by=actor)
        RoomMembership.objects.bulk_create(
            [RoomMembership(room=room, user=user) for user in [actor, *others]]
        )
        room = room_get(room_id=room.pk)
        for user in others:  # they learn of the room they were put in
            publish(f"user.{user.pk}", "room.updated", room_representation(room))
    return room


def room_member_add(*, actor: User, room_id: int, user_id: int) -> Room:
    """Any member may add an active user; adding a member again changes nothing."""
    require_chat_use(actor)
    with transaction.atomic():
        room = room_get_for_member(actor=actor, room_id=room_id)
        (user,) = _active_users([user_id], loc=["body", "user_id"])
        try:
            with transaction.atomic():  # a savepoint: a concurrent add may win the race
                _, added = RoomMembership.objects.get_or_create(room=room, user=user)
        except IntegrityError:
            added = False
        if added:
            _publish_room_updated(room.pk, also_user_ids=(user.pk,))
    return room_get(room_id=room.pk)


def room_member_remove(*, actor: User, room_id: int, user_id: int) -> None:
    """The creator removes anyone else; a member removes themselves (leaves)."""
    require_chat_use(actor)
    with transaction.atomic():
        room = room_get_for_member(actor=actor, room_id=room_id)
        if user_id != actor.pk and room.created_by_id != actor.pk:
            raise PermissionDenied(detail="Only the room's creator may remove other members.")
        if user_id == actor.pk and room.created_by_id == actor.pk:
            raise Conflict(detail="The creator cannot leave the room.")
        deleted, _ = RoomMembership.objects.filter(room=room, user_id=user_id).delete()
        if not deleted:
            raise NotFound(detail="No such member.")
        _publish_room_updated(room.pk, also_user_ids=(user_id,))
        reauthorize_user(user_id)


# --- messages -------------------------------------------------------------------------------
_CLIENT_MSG_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{CLIENT_MSG_ID_MAX_LENGTH}}}")


def _encodable(text: str) -> bool:
    """JSON allows lone surrogates; UTF-8 and the database do not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _validate_message(*, body: str, client_msg_id: str | None) -> None:
    """The rules REST and socket sends share (the REST schema states them too)."""
    errors = []
    if "\x00" in body or not _encodable(body):
        errors.append(FieldError(loc=["body", "body"], msg="Text must be valid Unicode."))
    elif not body.strip():
        errors.append(FieldError(loc=["body", "body"], msg="The message is empty."))
    elif len(body) > MESSAGE_BODY_MAX_LENGTH:
        errors.append(
            FieldError(loc=["body", "body"], msg=f"At most {MESSAGE_BODY_MAX_LENGTH} characters.")
        )
    if client_msg_id is not None and not _CLIENT_MSG_ID.fullmatch(client_msg_id):
        errors.append(
            FieldError(
                loc=["body", "client_msg_id"],
                msg=f"1 to {CLIENT_MSG_ID_MAX_LENGTH} of letters, digits and ._:- only.",
            )
        )
    if errors:
        raise ValidationFailed(detail="The message is not valid.", errors=errors)


@dataclass(frozen=True)
class SentMessage:
    message: Message
    # False when the sender's client_msg_id named a message already stored (a retry).
    created: bool


def message_send(
    *,
    actor: User,
    body: str,
    room_id: int | None = None,
    recipient_id: int | None = None,
    client_msg_id: str | None = None,
) -> SentMessage:
    """Store a chat message in a room (members only) or to one user, and publish
    ``message.created`` to ``room.{id}``, or to both parties' ``user.{id}``.

    Idempotent per sender and ``client_msg_id``: a retry finds the stored message and
    stores nothing (a unique constraint settles concurrent retries). REST and the socket's
    ``message.send`` both come here."""
    _validate_message(body=body, client_msg_id=client_msg_id)
    if (room_id is None) == (recipient_id is None):
        raise ValidationFailed(
            detail="Give exactly one of room_id and recipient_id.",
            errors=[
                FieldError(loc=["body", "room_id"], msg="Exactly one of room_id, recipient_id.")
            ],
        )
    require_chat_use(actor)
    if client_msg_id is not None:
        earlier = Message.objects.filter(sender=actor, client_msg_id=client_msg_id).first()
        if earlier is not None:
            return SentMessage(message=earlier, created=False)
    with transaction.atomic():
        if room_id is not None:
            # A room one is not in and a missing room both answer forbidden.
            # Locked: the room cannot vanish (nor the sender leave) before the insert.
            membership = RoomMembership.objects.select_for_update().filter(
                room_id=room_id, user=actor
            )
            if membership.first() is None:
                raise PermissionDenied(detail="Only members of the room may post to it.")
            target = {"room_id": room_id}
        else:
            assert recipient_id is not None  # exactly one of the two, checked above
            if recipient_id == actor.pk:
                raise ValidationFailed(
                    detail="A direct message needs another user.",
                    errors=[FieldError(loc=["body", "recipient_id"], msg="Not yourself.")],
                )
            _active_users([recipient_id], loc=["body", "recipient_id"])
            target = {"recipient_id": recipient_id}
        try:
            with transaction.atomic():  # a savepoint: the duplicate below must not end ours
                message = Message.objects.create(
                    sender=actor, body=body, client_msg_id=client_msg_id, **target
                )
        except IntegrityError:
            # A concurrent retry with the same key committed first (READ COMMITTED sees it).
            earlier = Message.objects.filter(sender=actor, client_msg_id=client_msg_id).first()
            if client_msg_id is None or earlier is None:
                raise
            return SentMessage(message=earlier, created=False)
        data = message_representation(message)
        if message.room_id is not None:
            publish(f"room.{message.room_id}", "message.created", data)
        else:
            publish(f"user.{actor.pk}", "message.created", data)
            publish(f"user.{message.recipient_id}", "message.created", data)
    return SentMessage(message=message, created=True)


# --- mail -----------------------------------------------------------------------------------
# Folders a copy may always be moved to; inbox, sent and drafts only by the copy first filed
# there (a received mail cannot pose as sent).
_FREE_FOLDERS = frozenset({MailFolder.ARCHIVE, MailFolder.TRASH})


def _publish_mail(mail: Mail, event: str) -> None:
    """``{mail, counts}`` to the copy's owner: the copy as GET shows it and the owner's
    unread counts after this change."""
    publish(
        f"user.{mail.user_id}",
        event,
        {"mail": mail_representation(mail), "counts": mail_unread_counts(user_id=mail.user_id)},
    )


def mail_send(*, actor: User, to: list[int], subject: str, body: str) -> Mail:
    """File the sender's copy in ``sent`` and one copy in each recipient's ``inbox``, in one
    transaction; ``mail.received`` to each recipient and ``mail.sent`` to the sender. The
    body is HTML, sanitized like posts. Returns the sender's copy."""
    require_mail_use(actor)
    recipient_ids = list(dict.fromkeys(to))
    _active_users(recipient_ids, loc=["body", "to"])
    clean_body = sanitize_html(body)
    with transaction.atomic():
        common = {
            "subject": subject,
            "body": clean_body,
            "sender": actor,
            "recipient_ids": recipient_ids,
            "created_at": timezone.now(),
        }
        sent = Mail.objects.create(
            user=actor,
            folder=MailFolder.SENT,
            home_folder=MailFolder.SENT,
            read_flag=True,
            **common,
        )
        received = [
            Mail.objects.create(
                user_id=user_id, folder=MailFolder.INBOX, home_folder=MailFolder.INBOX, **common
            )
            for user_id in recipient_ids
        ]
        _publish_mail(sent, "mail.sent")
        for copy in received:
            _publish_mail(copy, "mail.received")
    return sent


def _locked_own_mail(*, actor: User, mail_id: int) -> Mail:
    mail = Mail.objects.select_for_update().filter(pk=mail_id, user=actor).first()
    if mail is None:
        raise NotFound(detail="No such mail.")
    return mail


def mail_update(
    *, actor: User, mail_id: int, read_flag: bool | None = None, folder: str | None = None
) -> Mail:
    """Mark read or unread and/or move to another folder; ``mail.updated`` when something
    changed."""
    require_mail_use(actor)
    with transaction.atomic():
        mail = _locked_own_mail(actor=actor, mail_id=mail_id)
        dirty: list[str] = []
        if folder is not None and folder != mail.folder:
            if folder not in _FREE_FOLDERS and folder != mail.home_folder:
                raise ValidationFailed(
                    detail=f"This mail can go to archive, trash or {mail.home_folder} only.",
                    errors=[FieldError(loc=["body", "folder"], msg="Not a folder for this mail.")],
                )
            mail.folder = folder
            dirty.append("folder")
        if read_flag is not None and read_flag != mail.read_flag:
            mail.read_flag = read_flag
            dirty.append("read_flag")
        if dirty:
            mail.save(update_fields=dirty)
            _publish_mail(mail, "mail.updated")
    return mail


def mail_delete(*, actor: User, mail_id: int) -> Mail | None:
    """Outside trash: move to trash (``mail.updated``); returns the copy. In trash: delete it
    for good (``mail.deleted`` with ``{id, counts}``); returns None."""
    require_mail_use(actor)
    with transaction.atomic():
        mail = _locked_own_mail(actor=actor, mail_id=mail_id)
        if mail.folder != MailFolder.TRASH:
            mail.folder = MailFolder.TRASH
            mail.save(update_fields=["folder"])
            _publish_mail(mail, "mail.updated")
            return mail
        deleted_id = mail.pk
        mail.delete()
        publish(
            f"user.{actor.pk}",
            "mail.deleted",
            {"id": deleted_id, "counts": mail_unread_counts(user_id=actor.pk)},
        )
    return None
