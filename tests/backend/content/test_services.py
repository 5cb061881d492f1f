"""Content services: events carry what GET shows, object rights, clean-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from backend.accounts.models import User
from backend.content import selectors, services
from backend.content.models import File, Post
from backend.core.errors import NotFound, PermissionDenied, UnsupportedMediaType
from backend.core.permissions import has_perm
from realtime.models import OutboxEvent
from realtime.topics import authorize_topic
from tests.factories import PDF_BYTES, PostFactory, UserFactory, make_file
from tests.permission_matrix import staff_with

pytestmark = pytest.mark.django_db


def _events() -> list[tuple[str, str, dict]]:
    return [(e.topic, e.event, json.loads(e.payload)) for e in OutboxEvent.objects.order_by("pk")]


def _as_api_json(data: dict) -> dict:
    from realtime.publish import serialize

    return json.loads(serialize(data))


def test_publishing_events_carry_the_post_as_stored(editor: User) -> None:
    post = services.post_create(actor=editor, title="T", body_html="<p>b</p>", published=True)
    post = services.post_update(actor=editor, post_id=post.pk, changes={"title": "T2"})
    services.post_unpublish(actor=editor, post_id=post.pk)
    services.post_publish(actor=editor, post_id=post.pk)
    fresh = Post.objects.get(pk=post.pk)
    services.post_delete(actor=editor, post_id=post.pk)
    events = _events()
    assert [(topic, event) for topic, event, _ in events] == [
        ("posts", "post.published"),
        ("posts", "post.updated"),
        ("posts", "post.unpublished"),
        ("posts", "post.published"),
        ("posts", "post.deleted"),
    ]
    assert events[1][2]["title"] == "T2"
    assert events[2][2] == {"id": post.pk}
    assert events[3][2] == _as_api_json(selectors.post_data(fresh))
    assert events[4][2] == {"id": post.pk}


def test_drafts_publish_nothing(editor: User) -> None:
    post = services.post_create(actor=editor, title="Draft")
    services.post_update(actor=editor, post_id=post.pk, changes={"body_html": "<p>x</p>"})
    services.post_delete(actor=editor, post_id=post.pk)
    assert _events() == []


def test_author_gets_object_rights_and_nobody_else(editor: User) -> None:
    author = staff_with("posts.create")
    post = services.post_create(actor=author, title="Mine")
    stranger = staff_with("posts.create")
    for right in ("posts.view", "posts.update", "posts.delete"):
        assert has_perm(author, right, post)
        assert not has_perm(stranger, right, post)
        assert has_perm(editor, right, post)  # posts.manage implies it


def test_refusals(editor: User) -> None:
    writer = staff_with("posts.create")
    draft = PostFactory(user=editor)
    with pytest.raises(NotFound):
        services.post_update(actor=writer, post_id=draft.pk, changes={"title": "x"})
    services.post_publish(actor=editor, post_id=draft.pk)
    with pytest.raises(PermissionDenied):
        services.post_update(actor=writer, post_id=draft.pk, changes={"title": "x"})
    with pytest.raises(PermissionDenied):
        services.post_create(actor=UserFactory(roles=["Customer"]), title="x")


def test_posts_topic_is_open_to_signed_in_users_only() -> None:
    from backend.core.errors import DomainError

    active = UserFactory(roles=["Customer"])
    assert authorize_topic(active, "posts").name == "posts"
    inactive = UserFactory(roles=["Customer"], is_active=False)
    with pytest.raises(PermissionDenied):
        authorize_topic(inactive, "posts")
    with pytest.raises(DomainError):
        authorize_topic(active, "posts.3")


def test_refused_type_stores_nothing(customer: User, settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    with pytest.raises(UnsupportedMediaType):
        services.file_upload(
            actor=customer, uploaded=SimpleUploadedFile("a.pdf", b"\x00\x01binary")
        )
    assert not any(tmp_path.rglob("*"))


def test_allowed_types_are_a_setting(customer: User, settings: Any) -> None:
    settings.FILE_UPLOAD_ALLOWED_TYPES = ["image/png"]
    with pytest.raises(UnsupportedMediaType):
        services.file_upload(actor=customer, uploaded=SimpleUploadedFile("a.pdf", PDF_BYTES))


def test_sharing_with_the_owner_grants_and_publishes_nothing(customer: User) -> None:
    file = make_file(customer)
    services.file_share(actor=customer, file_id=file.pk, user_id=customer.pk)
    assert _events() == []


@pytest.mark.django_db(transaction=True)
def test_deleting_a_file_row_anywhere_removes_the_bytes_and_rights() -> None:
    from guardian.models import UserObjectPermission

    owner = UserFactory(roles=["Customer"])
    file = make_file(owner)
    name = file.storage_name
    File.objects.filter(pk=file.pk).delete()  # e.g. the admin's bulk delete
    assert not storages["default"].exists(name)
    assert not UserObjectPermission.objects.filter(
        object_pk=str(file.pk), content_type__app_label="content"
    ).exists()


def test_admin_saves_sanitized_html(editor: User, rf: RequestFactory) -> None:
    from django.contrib import admin

    post = Post(user=editor, title="x", body_html="<p onclick='x()'>a</p><script>b</script>")
    model_admin = admin.site._registry[Post]
    model_admin.save_model(rf.post("/admin/"), post, form=None, change=False)
    assert Post.objects.get(pk=post.pk).body_html == "<p>a</p>"
