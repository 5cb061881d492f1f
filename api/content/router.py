"""/posts and /files. Thin: parse, call a service or selector, shape."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.multipartparser import MultiPartParserError
from django.http.response import HttpResponseBase
from ninja import Query, Router, Status

from api.content.auth import optional_token_auth
from api.content.schemas import (
    FileListQuery,
    FileOut,
    FileShareIn,
    PostCreateIn,
    PostListQuery,
    PostOut,
    PostPatchIn,
    PostPutIn,
)
from api.content.streaming import stream_file
from api.content.uploads import SizeLimitUploadHandler, refuse_declared_oversize
from api.errors import problem_responses
from api.pagination import Page, paginate
from api.security import current_user
from backend.content import selectors, services
from backend.core import storage
from backend.core.errors import FieldError, NotFound, PayloadTooLarge, ValidationFailed
from backend.core.permissions import require_perm

posts_router = Router()
files_router = Router()


def _caller(request: HttpRequest) -> Any:
    """The signed-in user, or an AnonymousUser on public reads (``optional_token_auth``)."""
    return getattr(request, "auth", None)


# --- /posts ---------------------------------------------------------------------------------
@posts_router.get(
    "",
    auth=optional_token_auth,
    response={200: Page[PostOut], **problem_responses(401, 422)},
    summary="Published posts, and the drafts the caller may see (public)",
)
def post_list(request: HttpRequest, query: Query[PostListQuery]) -> Any:
    posts = selectors.post_list(
        user=_caller(request), published=query.published, author_id=query.user_id
    )
    return paginate(posts, query)


@posts_router.post(
    "",
    response={201: PostOut, **problem_responses(401, 403, 422)},
    summary="Write a post (posts.create); a draft unless published is true",
)
def post_create(request: HttpRequest, payload: PostCreateIn) -> Status[Any]:
    post = services.post_create(
        actor=current_user(request),
        title=payload.title,
        body_html=payload.body_html,
        published=payload.published,
    )
    return Status(201, post)


@posts_router.get(
    "/{int:post_id}",
    auth=optional_token_auth,
    response={200: PostOut, **problem_responses(401, 404)},
    summary="One post (public when published; a draft only for its author and posts.manage)",
)
def post_detail(request: HttpRequest, post_id: int) -> Any:
    return selectors.post_get(user=_caller(request), post_id=post_id)


_UPDATE_RESPONSES = {200: PostOut, **problem_responses(401, 403, 404, 422)}


@posts_router.patch(
    "/{int:post_id}",
    response=_UPDATE_RESPONSES,
    summary="Change some fields (author or posts.manage); published true/false (un)publishes",
)
def post_patch(request: HttpRequest, post_id: int, payload: PostPatchIn) -> Any:
    return services.post_update(
        actor=current_user(request),
        post_id=post_id,
        changes=payload.model_dump(exclude_unset=True),
    )


@posts_router.put(
    "/{int:post_id}",
    response=_UPDATE_RESPONSES,
    summary="Replace title and body (author or posts.manage)",
)
def post_put(request: HttpRequest, post_id: int, payload: PostPutIn) -> Any:
    return services.post_update(
        actor=current_user(request),
        post_id=post_id,
        changes=payload.model_dump(exclude_unset=True),
    )


@posts_router.post(
    "/{int:post_id}/publish",
    response=_UPDATE_RESPONSES,
    summary="Publish a draft (author or posts.manage); publishing again changes nothing",
)
def post_publish(request: HttpRequest, post_id: int) -> Any:
    return services.post_publish(actor=current_user(request), post_id=post_id)


@posts_router.post(
    "/{int:post_id}/unpublish",
    response=_UPDATE_RESPONSES,
    summary="Take a published post back to draft (author or posts.manage)",
)
def post_unpublish(request: HttpRequest, post_id: int) -> Any:
    return services.post_unpublish(actor=current_user(request), post_id=post_id)


@posts_router.delete(
    "/{int:post_id}",
    response={204: None, **problem_responses(401, 403, 404)},
    summary="Delete a post (author or posts.manage)",
)
def post_delete(request: HttpRequest, post_id: int) -> Status[None]:
    services.post_delete(actor=current_user(request), post_id=post_id)
    return Status(204, None)


# --- /files ---------------------------------------------------------------------------------
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@files_router.post(
    "",
    response={201: FileOut, **problem_responses(401, 403, 413, 415, 422)},
    summary="Upload a file (files.upload): multipart field `file`",
    description="413 over FILE_UPLOAD_MAX_BYTES (refused before the body is read when "
    "Content-Length says so); 415 when the content's type is not allowed.",
    openapi_extra=_UPLOAD_BODY,
)
def file_upload(request: HttpRequest) -> Status[Any]:
    actor = current_user(request)
    # Everything that can refuse without the body does so before it is parsed.
    require_perm(actor, "files.upload")
    refuse_declared_oversize(request)
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise ValidationFailed(
            detail="Send the file as multipart/form-data in the field 'file'.",
            errors=[FieldError(["body", "file"], "multipart/form-data expected")],
        )
    request.upload_handlers.insert(0, SizeLimitUploadHandler(request))
    try:
        uploaded = request.FILES.get("file")
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(detail="The request body is too large.") from exc
    except MultiPartParserError as exc:
        raise ValidationFailed(
            detail="The multipart body could not be read.",
            errors=[FieldError(["body", "file"], "malformed multipart body")],
        ) from exc
    if uploaded is None:
        raise ValidationFailed(
            detail="No file in the field 'file'.",
            errors=[FieldError(["body", "file"], "Field required")],
        )
    try:
        file = services.file_upload(actor=actor, uploaded=uploaded)
    finally:
        uploaded.close()
    return Status(201, file)


@files_router.get(
    "",
    response={200: Page[FileOut], **problem_responses(401, 422)},
    summary="Own files and files shared with the caller",
)
def file_list(request: HttpRequest, query: Query[FileListQuery]) -> Any:
    return paginate(selectors.file_list(user=current_user(request)), query)


@files_router.get(
    "/{int:file_id}",
    response={200: FileOut, **problem_responses(401, 404)},
    summary="One file's details (owner, shared with the caller, or files.manage)",
)
def file_detail(request: HttpRequest, file_id: int) -> Any:
    return selectors.file_get(user=current_user(request), file_id=file_id)


@files_router.get(
    "/{int:file_id}/download",
    response={200: None, 302: None, **problem_responses(401, 404)},
    summary="The bytes (local storage) or a redirect to an expiring link (S3)",
)
def file_download(request: HttpRequest, file_id: int) -> HttpResponseBase:
    file = selectors.file_get(user=current_user(request), file_id=file_id)
    if storage.is_s3(storage.default_storage()):
        url = storage.private_url(
            file.storage_name,
            expires_in=settings.FILE_DOWNLOAD_LINK_EXPIRY,
            download_name=file.filename,
        )
        response: HttpResponse = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"
        return response
    try:
        fileobj = storage.default_storage().open(file.storage_name, "rb")
    except OSError as exc:
        raise NotFound(detail="The stored bytes of this file are missing.") from exc
    return stream_file(
        fileobj,
        content_type=storage.served_content_type(file.mime_type),
        disposition=storage.content_disposition(file.filename),
        size=file.size,
    )


@files_router.delete(
    "/{int:file_id}",
    response={204: None, **problem_responses(401, 403, 404)},
    summary="Delete a file and its stored bytes (owner or files.manage)",
)
def file_delete(request: HttpRequest, file_id: int) -> Status[None]:
    services.file_delete(actor=current_user(request), file_id=file_id)
    return Status(204, None)


@files_router.post(
    "/{int:file_id}/share",
    response={200: FileOut, **problem_responses(401, 403, 404, 422)},
    summary="Let one user read this file (the owner); they get file.shared on user.{id}",
)
def file_share(request: HttpRequest, file_id: int, payload: FileShareIn) -> Any:
    return services.file_share(
        actor=current_user(request), file_id=file_id, user_id=payload.user_id
    )
