"""Request and response bodies of /rooms, /messages and /mails."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, StringConstraints, field_validator

from api.pagination import PageParams
from api.schemas import NOT_BLANK, Input, Omitted, PartialInput, SearchTerm, Text
from backend.messaging.models import (
    CLIENT_MSG_ID_MAX_LENGTH,
    MAIL_BODY_MAX_LENGTH,
    MAIL_SUBJECT_MAX_LENGTH,
    MESSAGE_BODY_MAX_LENGTH,
)

UserId = Annotated[int, Field(ge=1, le=2**63 - 1)]
RoomName = Annotated[str, Text(max_length=150, min_length=1, pattern=NOT_BLANK, trim=True)]
MessageBody = Annotated[
    str, Text(max_length=MESSAGE_BODY_MAX_LENGTH, min_length=1, pattern=NOT_BLANK)
]
# Any client-made key (a UUID, typically); letters, digits and ``._:-`` only.
ClientMsgId = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=CLIENT_MSG_ID_MAX_LENGTH, pattern=r"^[A-Za-z0-9._:-]+$"
    ),
]
MESSAGE_PAGE_DEFAULT = 50
MESSAGE_PAGE_MAX = 100


# --- rooms ----------------------------------------------------------------------------------
class RoomOut(Schema):
    id: int
    name: str
    member_ids: list[int] = Field(description="Member user ids, ascending.")
    created_by_id: int | None = Field(description="The creator (may remove other members).")
    created_at: datetime


class RoomCreateIn(Input):
    name: RoomName
    member_ids: list[UserId] = Field(
        default_factory=list, max_length=500, description="Others to add; the creator always is."
    )


class RoomMemberIn(Input):
    user_id: UserId


class RoomMemberOut(Schema):
    user_id: int
    name: str
    online: bool = Field(description="Has a socket subscribed to room.{id} right now.")


# --- messages -------------------------------------------------------------------------------
class MessageOut(Schema):
    id: int
    sender_id: int
    room_id: int | None
    recipient_id: int | None
    body: str
    created_at: datetime


class MessagePageOut(Schema):
    items: list[MessageOut] = Field(description="Newest first.")
    next_before: int | None = Field(
        description="Pass as `before` for older messages; null at the start."
    )


class MessageCursor(Schema):
    before: int | None = Field(
        None, ge=1, le=2**63 - 1, description="Only messages older than this id."
    )
    limit: int = Field(MESSAGE_PAGE_DEFAULT, ge=1, le=MESSAGE_PAGE_MAX)


class DirectMessagesQuery(MessageCursor):
    with_: UserId = Field(alias="with", description="The other party's user id.")


class MessageSendIn(Input):
    """Exactly one of ``room_id`` and ``recipient_id``."""

    room_id: UserId | None = None
    recipient_id: UserId | None = None
    body: MessageBody
    client_msg_id: ClientMsgId | None = Field(
        None, description="Idempotency key: resending it stores nothing new."
    )

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("The message is empty.")
        return value


# --- mail -----------------------------------------------------------------------------------
Folder = Literal["inbox", "sent", "drafts", "archive", "trash"]
Subject = Annotated[
    str, Text(max_length=MAIL_SUBJECT_MAX_LENGTH, min_length=1, pattern=NOT_BLANK, trim=True)
]
MailBody = Annotated[str, Text(max_length=MAIL_BODY_MAX_LENGTH)]


class MailOut(Schema):
    id: int
    user_id: int = Field(description="Whose mailbox this copy is in.")
    folder: Folder
    subject: str
    body: str = Field(description="Sanitized HTML.")
    read_flag: bool
    sender_id: int | None
    recipient_ids: list[int]
    created_at: datetime


class MailCountsOut(Schema):
    """Unread copies per folder."""

    inbox: int
    sent: int
    drafts: int
    archive: int
    trash: int


class MailSendIn(Input):
    to: list[UserId] = Field(min_length=1, max_length=100, description="Recipient user ids.")
    subject: Subject
    body: MailBody


class MailPatchIn(PartialInput):
    """Fields may be left out, never null."""

    read_flag: bool | Omitted = None
    folder: Folder | Omitted = Field(
        None, description="archive and trash always; inbox/sent/drafts only where it came from."
    )


class MailListQuery(PageParams):
    folder: Folder | None = Field(None, description="Only this folder.")
    search: SearchTerm = Field("", description="Case-insensitive match on the subject.")
