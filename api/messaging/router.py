"""/rooms and /messages (chat), /mails. Thin: parse, call a service or selector, shape."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from api.errors import problem_responses
from api.messaging.schemas import (
    DirectMessagesQuery,
    MailCountsOut,
    MailListQuery,
    MailOut,
    MailPatchIn,
    MailSendIn,
    MessageCursor,
    MessageOut,
    MessagePageOut,
    MessageSendIn,
    RoomCreateIn,
    RoomMemberIn,
    RoomMemberOut,
    RoomOut,
)
from api.pagination import Page, PageParams, paginate
from api.security import current_user
from backend.messaging import selectors, services
from backend.messaging.access import require_chat_use, require_mail_use
from backend.messaging.selectors import (
    MessagePage,
    mail_representation,
    message_representation,
    room_representation,
)

rooms_router = Router()
messages_router = Router()
mails_router = Router()


def _message_page(page: MessagePage) -> dict[str, Any]:
    return {
        "items": [message_representation(message) for message in page.items],
        "next_before": page.next_before,
    }


# --- /rooms ---------------------------------------------------------------------------------
@rooms_router.get(
    "",
    response={200: Page[RoomOut], **problem_responses(401, 403, 422)},
    summary="Rooms the caller is a member of",
)
def room_list(request: HttpRequest, query: Query[PageParams]) -> dict[str, Any]:
    actor = current_user(request)
    require_chat_use(actor)
    return paginate(selectors.room_list_for_member(actor=actor), query, room_representation)


@rooms_router.post(
    "",
    response={201: RoomOut, **problem_responses(401, 403, 422)},
    summary="Create a room; the creator is a member",
)
def room_create(request: HttpRequest, payload: RoomCreateIn) -> Status[dict[str, Any]]:
    room = services.room_create(
        actor=current_user(request), name=payload.name, member_ids=payload.member_ids
    )
    return Status(201, room_representation(room))


@rooms_router.get(
    "/{int:room_id}",
    response={200: RoomOut, **problem_responses(401, 403, 404)},
    summary="One room (members only; others get 404)",
)
def room_detail(request: HttpRequest, room_id: int) -> dict[str, Any]:
    actor = current_user(request)
    require_chat_use(actor)
    return room_representation(selectors.room_get_for_member(actor=actor, room_id=room_id))


@rooms_router.get(
    "/{int:room_id}/members",
    response={200: list[RoomMemberOut], **problem_responses(401, 403, 404)},
    summary="The members and who of them is online in the room now",
)
def room_members(request: HttpRequest, room_id: int) -> list[dict[str, Any]]:
    actor = current_user(request)
    require_chat_use(actor)
    return selectors.room_members_with_presence(actor=actor, room_id=room_id)


@rooms_router.post(
    "/{int:room_id}/members",
    response={200: RoomOut, **problem_responses(401, 403, 404, 422)},
    summary="Add a member (any member may)",
)
def room_member_add(request: HttpRequest, room_id: int, payload: RoomMemberIn) -> dict[str, Any]:
    room = services.room_member_add(
        actor=current_user(request), room_id=room_id, user_id=payload.user_id
    )
    return room_representation(room)


@rooms_router.delete(
    "/{int:room_id}/members/{int:user_id}",
    response={204: None, **problem_responses(401, 403, 404, 409)},
    summary="Remove a member (the creator: anyone else; a member: themselves)",
)
def room_member_remove(request: HttpRequest, room_id: int, user_id: int) -> Status[None]:
    services.room_member_remove(actor=current_user(request), room_id=room_id, user_id=user_id)
    return Status(204, None)


@rooms_router.get(
    "/{int:room_id}/messages",
    response={200: MessagePageOut, **problem_responses(401, 403, 404, 422)},
    summary="A room's messages, newest first, by cursor (?before=<id>&limit=)",
)
def room_messages(
    request: HttpRequest, room_id: int, query: Query[MessageCursor]
) -> dict[str, Any]:
    actor = current_user(request)
    require_chat_use(actor)
    page = selectors.room_messages(
        actor=actor, room_id=room_id, before=query.before, limit=query.limit
    )
    return _message_page(page)


# --- /messages ------------------------------------------------------------------------------
@messages_router.get(
    "",
    response={200: MessagePageOut, **problem_responses(401, 403, 422)},
    summary="The direct conversation with one user (?with=<user id>), newest first",
)
def direct_messages(request: HttpRequest, query: Query[DirectMessagesQuery]) -> dict[str, Any]:
    actor = current_user(request)
    require_chat_use(actor)
    page = selectors.direct_messages(
        actor=actor, other_user_id=query.with_, before=query.before, limit=query.limit
    )
    return _message_page(page)


@messages_router.post(
    "",
    response={201: MessageOut, **problem_responses(401, 403, 422)},
    summary="Send to a room (members only) or to one user; client_msg_id makes it idempotent",
)
def message_send(request: HttpRequest, payload: MessageSendIn) -> Status[dict[str, Any]]:
    sent = services.message_send(
        actor=current_user(request),
        body=payload.body,
        room_id=payload.room_id,
        recipient_id=payload.recipient_id,
        client_msg_id=payload.client_msg_id,
    )
    # A retry answers exactly like the first send: the same message.
    return Status(201, message_representation(sent.message))


# --- /mails ---------------------------------------------------------------------------------
@mails_router.get(
    "",
    response={200: Page[MailOut], **problem_responses(401, 403, 422)},
    summary="Own mail, newest first; ?folder= and ?search= (subject)",
)
def mail_list(request: HttpRequest, query: Query[MailListQuery]) -> dict[str, Any]:
    actor = current_user(request)
    require_mail_use(actor)
    mails = selectors.mail_list(actor=actor, folder=query.folder, search=query.search)
    return paginate(mails, query, mail_representation)


@mails_router.post(
    "",
    response={201: MailOut, **problem_responses(401, 403, 422)},
    summary="Send: the sender's copy goes to sent, one copy to each recipient's inbox",
)
def mail_send(request: HttpRequest, payload: MailSendIn) -> Status[dict[str, Any]]:
    sent = services.mail_send(
        actor=current_user(request), to=payload.to, subject=payload.subject, body=payload.body
    )
    return Status(201, mail_representation(sent))


@mails_router.get(
    "/counts",
    response={200: MailCountsOut, **problem_responses(401, 403)},
    summary="Unread mail per folder",
)
def mail_counts(request: HttpRequest) -> dict[str, int]:
    actor = current_user(request)
    require_mail_use(actor)
    return selectors.mail_unread_counts(user_id=actor.pk)


@mails_router.get(
    "/{int:mail_id}",
    response={200: MailOut, **problem_responses(401, 403, 404)},
    summary="One own mail (anyone else's is 404)",
)
def mail_detail(request: HttpRequest, mail_id: int) -> dict[str, Any]:
    actor = current_user(request)
    require_mail_use(actor)
    return mail_representation(selectors.mail_get(actor=actor, mail_id=mail_id))


@mails_router.patch(
    "/{int:mail_id}",
    response={200: MailOut, **problem_responses(401, 403, 404, 422)},
    summary="Mark read/unread, move to a folder",
)
def mail_patch(request: HttpRequest, mail_id: int, payload: MailPatchIn) -> dict[str, Any]:
    changes = payload.model_dump(exclude_unset=True)
    mail = services.mail_update(
        actor=current_user(request),
        mail_id=mail_id,
        read_flag=changes.get("read_flag"),
        folder=changes.get("folder"),
    )
    return mail_representation(mail)


@mails_router.delete(
    "/{int:mail_id}",
    response={204: None, **problem_responses(401, 403, 404)},
    summary="Move to trash; a mail already in trash is deleted for good",
)
def mail_delete(request: HttpRequest, mail_id: int) -> Status[None]:
    services.mail_delete(actor=current_user(request), mail_id=mail_id)
    return Status(204, None)
