"""Reads of posts and files, filtered in the database by what the user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from backend.content.models import File, Post
from backend.core.errors import NotFound
from backend.core.permissions import filter_by_perm, has_perm, registry


def post_list(
    *, user: Any, published: bool | None = None, author_id: int | None = None
) -> QuerySet[Post]:
    """Published posts, and the drafts ``user`` may see (own; every draft with posts.manage).
    Anonymous callers (``user`` None) see published posts only."""
    visible_drafts = filter_by_perm(
        user, Post.objects.filter(published_at__isnull=True), "posts.view"
    )
    posts = Post.objects.filter(
        Q(published_at__isnull=False) | Q(pk__in=visible_drafts.values("pk"))
    )
    if published is not None:
        posts = posts.filter(published_at__isnull=not published)
    if author_id is not None:
        posts = posts.filter(user_id=author_id)
    return posts


def can_see_post(user: Any, post: Post) -> bool:
    return post.is_published or has_perm(user, "posts.view", post)


def post_get(*, user: Any, post_id: int) -> Post:
    """The post when ``user`` may see it; 404 otherwise (a draft of someone else looks missing)."""
    post = Post.objects.filter(pk=post_id).first()
    if post is None or not can_see_post(user, post):
        raise NotFound(detail="No such post.")
    return post


def post_data(post: Post) -> dict[str, Any]:
    """A post as GET /posts/{id} shows it (also the payload of its events)."""
    return {
        "id": post.pk,
        "user_id": post.user_id,
        "title": post.title,
        "body_html": post.body_html,
        "published_at": post.published_at,
        "created_at": post.created_at,
        "updated_at": post.updated_at,
    }


def file_list(*, user: Any) -> QuerySet[File]:
    """Files ``user`` owns or that were shared with them (object rights only: files.manage
    reads any file by id but does not fill this list with everyone's files)."""
    from guardian.shortcuts import get_objects_for_user

    if user is None or not user.is_authenticated or not user.is_active:
        return File.objects.none()
    return get_objects_for_user(
        user,
        registry.get("files.view").perm,
        File.objects.all(),
        accept_global_perms=False,
        with_superuser=False,
    )


def file_get(*, user: Any, file_id: int) -> File:
    """The file when ``user`` may read it (owner, shared with them, files.manage); else 404."""
    file = File.objects.filter(pk=file_id).first()
    if file is None or not has_perm(user, "files.view", file):
        raise NotFound(detail="No such file.")
    return file


def file_data(file: File) -> dict[str, Any]:
    """A file as GET /files/{id} shows it (also the payload of ``file.shared``)."""
    return {
        "id": file.pk,
        "user_id": file.user_id,
        "filename": file.filename,
        "size": file.size,
        "mime_type": file.mime_type,
        "created_at": file.created_at,
    }
