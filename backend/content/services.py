"""Writes of posts and files. Each is one transaction with its permission checks; events are
published inside it and leave once it commits.

Posts publish to the public ``posts`` topic: ``post.published`` (the post as GET shows it) when a
post goes public, ``post.updated`` when a published post changes, ``post.unpublished`` and
``post.deleted`` (``{"id"}``) when a published post goes away. Files publish ``file.shared``
(the file as GET shows it) to ``user.{id}`` of the user it was shared with.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from backend.content import selectors
from backend.content.models import File, Post
from backend.content.permissions import FILE_OWNER_RIGHTS, FILE_SHARED_RIGHTS, POST_AUTHOR_RIGHTS
from backend.content.sniffing import sniff_mime_type
from backend.core import storage
from backend.core.errors import (
    FieldError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from backend.core.html import sanitize_html
from backend.core.permissions import grant_perm, has_perm, require_perm
from realtime.publish import publish

logger = logging.getLogger(__name__)

POSTS_TOPIC = "posts"
TITLE_MAX_LENGTH = 200


# --- posts ------------------------------------------------------------------------------------
def _clean_title(title: str) -> str:
    # ASCII white space only, as the API's schema states (a no-break space is text).
    title = (title or "").strip(" \t\n\r")
    if not title:
        raise ValidationFailed(
            detail="The title may not be empty.", errors=[FieldError(["body", "title"], "empty")]
        )
    if len(title) > TITLE_MAX_LENGTH:
        raise ValidationFailed(
            detail=f"The title is longer than {TITLE_MAX_LENGTH} characters.",
            errors=[FieldError(["body", "title"], f"at most {TITLE_MAX_LENGTH} characters")],
        )
    return title


def post_create(*, actor: Any, title: str, body_html: str = "", published: bool = False) -> Post:
    require_perm(actor, "posts.create")
    with transaction.atomic():
        post = Post.objects.create(
            user=actor,
            title=_clean_title(title),
            body_html=sanitize_html(body_html),
            published_at=timezone.now() if published else None,
        )
        for right in POST_AUTHOR_RIGHTS:
            grant_perm(actor, right, post)
        if published:
            publish(POSTS_TOPIC, "post.published", selectors.post_data(post))
    return post


def _post_for_change(*, actor: Any, post_id: int, right: str) -> Post:
    """The locked post; 404 when the actor may not see it, 403 when they may see but not
    change it."""
    post = Post.objects.select_for_update().filter(pk=post_id).first()
    if post is None or not selectors.can_see_post(actor, post):
        raise NotFound(detail="No such post.")
    require_perm(actor, right, post)
    return post


def post_update(*, actor: Any, post_id: int, changes: dict[str, Any]) -> Post:
    """Change ``title``, ``body_html`` and/or ``published`` (true publishes a draft, false
    takes a published post back to draft)."""
    with transaction.atomic():
        post = _post_for_change(actor=actor, post_id=post_id, right="posts.update")
        was_published = post.is_published
        if "title" in changes:
            post.title = _clean_title(changes["title"])
        if "body_html" in changes:
            post.body_html = sanitize_html(changes["body_html"] or "")
        if "published" in changes and bool(changes["published"]) != was_published:
            post.published_at = timezone.now() if changes["published"] else None
        post.save()
        if post.is_published:
            event = "post.updated" if was_published else "post.published"
            publish(POSTS_TOPIC, event, selectors.post_data(post))
        elif was_published:
            publish(POSTS_TOPIC, "post.unpublished", {"id": post.pk})
    return post


def post_publish(*, actor: Any, post_id: int) -> Post:
    """Publish a draft (publishing a published post changes nothing)."""
    with transaction.atomic():
        post = _post_for_change(actor=actor, post_id=post_id, right="posts.update")
        if post.is_published:
            return post
        return post_update(actor=actor, post_id=post_id, changes={"published": True})


def post_unpublish(*, actor: Any, post_id: int) -> Post:
    with transaction.atomic():
        post = _post_for_change(actor=actor, post_id=post_id, right="posts.update")
        if not post.is_published:
            return post
        return post_update(actor=actor, post_id=post_id, changes={"published": False})


def post_delete(*, actor: Any, post_id: int) -> None:
    with transaction.atomic():
        post = _post_for_change(actor=actor, post_id=post_id, right="posts.delete")
        was_published, pk = post.is_published, post.pk
        post.delete()  # object rights go with it (backend.content.signals)
        if was_published:
            publish(POSTS_TOPIC, "post.deleted", {"id": pk})


# --- files ------------------------------------------------------------------------------------
def allowed_mime_types() -> frozenset[str]:
    return frozenset(settings.FILE_UPLOAD_ALLOWED_TYPES)


def file_upload(*, actor: Any, uploaded: UploadedFile) -> File:
    """Store an upload. Its type is sniffed from the content and must be allowed (415); over
    ``FILE_UPLOAD_MAX_BYTES`` is 413. The bytes go to storage under a random key before the
    row is written; if the row cannot be written the stored object is removed again."""
    require_perm(actor, "files.upload")
    limit = settings.FILE_UPLOAD_MAX_BYTES
    if uploaded.size is not None and uploaded.size > limit:
        raise PayloadTooLarge(detail=f"Files may be at most {limit} bytes.")
    if not uploaded.size:
        raise ValidationFailed(
            detail="The file is empty.", errors=[FieldError(["body", "file"], "empty file")]
        )
    if uploaded.file is None:
        raise ValidationFailed(
            detail="No file content.", errors=[FieldError(["body", "file"], "no content")]
        )
    mime_type = sniff_mime_type(uploaded.file)
    if mime_type is None or mime_type not in allowed_mime_types():
        raise UnsupportedMediaType(
            detail=f"Files of this type ({mime_type or 'unknown'}) are not accepted.",
        )
    filename = storage.safe_filename(uploaded.name or "", default="upload")
    # django-storages sends this as the object's Content-Type on S3.
    uploaded.content_type = mime_type
    stored_name = storage.default_storage().save(
        f"files/{timezone.now():%Y/%m}/{uuid.uuid4().hex}", uploaded
    )
    try:
        with transaction.atomic():
            file = File.objects.create(
                user=actor,
                filename=filename,
                storage_name=stored_name,
                size=uploaded.size,
                mime_type=mime_type,
            )
            for right in FILE_OWNER_RIGHTS:
                grant_perm(actor, right, file)
    except BaseException:
        _delete_stored(stored_name)
        raise
    return file


def _delete_stored(name: str) -> None:
    try:
        storage.default_storage().delete(name)
    except Exception:
        # The row is gone or was never written: an orphaned object costs space, not safety.
        logger.exception("could not delete stored object %s", name)


def delete_stored_on_commit(name: str) -> None:
    transaction.on_commit(lambda: _delete_stored(name))


def file_delete(*, actor: Any, file_id: int) -> None:
    """Owner or files.manage; the stored object goes once the deletion commits."""
    with transaction.atomic():
        file = selectors.file_get(user=actor, file_id=file_id)
        require_perm(actor, "files.delete", file)
        file.delete()  # stored object and object rights go with it (backend.content.signals)


def file_share(*, actor: Any, file_id: int, user_id: int) -> File:
    """Give ``user_id`` read access to this one file and tell them (``file.shared``)."""
    from backend.accounts.models import User

    with transaction.atomic():
        file = selectors.file_get(user=actor, file_id=file_id)
        require_perm(actor, "files.share", file)
        recipient = User.objects.filter(pk=user_id, is_active=True).first()
        if recipient is None:
            raise ValidationFailed(
                detail="No such user.", errors=[FieldError(["body", "user_id"], "no such user")]
            )
        if recipient.pk == file.user_id or has_perm(recipient, "files.view", file):
            return file  # already readable by them: nothing to grant or announce
        for right in FILE_SHARED_RIGHTS:
            grant_perm(recipient, right, file)
        publish(f"user.{recipient.pk}", "file.shared", selectors.file_data(file))
    return file
