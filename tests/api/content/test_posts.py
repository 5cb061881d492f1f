"""/posts: drafts and publishing, sanitized bodies, author rights through guardian."""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from backend.content.models import Post
from realtime.models import OutboxEvent
from tests.conftest import ApiClient
from tests.factories import PostFactory, UserFactory, bearer_for
from tests.permission_matrix import (
    ANONYMOUS,
    OTHER,
    OWNER,
    STAFF,
    Endpoint,
    World,
    check,
    matrix,
    staff_with,
)

pytestmark = pytest.mark.django_db


def _posts_state() -> tuple:
    from guardian.models import UserObjectPermission

    posts = tuple(
        Post.objects.order_by("pk").values_list(
            "pk", "user_id", "title", "body_html", "published_at", "updated_at"
        )
    )
    return posts, UserObjectPermission.objects.count(), OutboxEvent.objects.count()


def _world(*, published: bool) -> World:
    from django.utils import timezone

    owner = staff_with("posts.create")
    post = PostFactory(user=owner, published_at=timezone.now() if published else None)
    return World(
        owner=owner,
        other=staff_with("posts.create"),
        staff=staff_with("posts.manage"),
        object_id=post.pk,
        state=_posts_state,
    )


@pytest.fixture
def draft_world() -> World:
    return _world(published=False)


@pytest.fixture
def published_world() -> World:
    return _world(published=True)


DRAFT_ENDPOINTS = [
    Endpoint("GET", "/posts/{id}", {ANONYMOUS: 404, OWNER: 200, OTHER: 404, STAFF: 200}),
    Endpoint(
        "PATCH",
        "/posts/{id}",
        {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200},
        body={"title": "Renamed"},
    ),
    Endpoint(
        "PUT",
        "/posts/{id}",
        {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200},
        body={"title": "Put", "body_html": "<p>x</p>"},
    ),
    Endpoint(
        "PATCH",
        "/posts/{id}",
        {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200},
        body={"published": True},
        label="PATCH /posts/{id} published",
    ),
    Endpoint("POST", "/posts/{id}/publish", {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200}),
    Endpoint("POST", "/posts/{id}/unpublish", {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200}),
    Endpoint("DELETE", "/posts/{id}", {ANONYMOUS: 401, OWNER: 204, OTHER: 404, STAFF: 204}),
    Endpoint(
        "POST",
        "/posts",
        # posts.manage alone does not let one write posts.
        {ANONYMOUS: 401, OWNER: 201, OTHER: 201, STAFF: 403},
        body={"title": "New", "body_html": "<p>new</p>"},
    ),
    Endpoint("GET", "/posts", {ANONYMOUS: 200, OWNER: 200, OTHER: 200, STAFF: 200}),
]

PUBLISHED_ENDPOINTS = [
    Endpoint("GET", "/posts/{id}", {ANONYMOUS: 200, OWNER: 200, OTHER: 200, STAFF: 200}),
    Endpoint(
        "PATCH",
        "/posts/{id}",
        # Seeing a published post is not changing it: 403 (it is no secret that it exists).
        {ANONYMOUS: 401, OWNER: 200, OTHER: 403, STAFF: 200},
        body={"body_html": "<p>changed</p>"},
    ),
    Endpoint("POST", "/posts/{id}/unpublish", {ANONYMOUS: 401, OWNER: 200, OTHER: 403, STAFF: 200}),
    Endpoint("DELETE", "/posts/{id}", {ANONYMOUS: 401, OWNER: 204, OTHER: 403, STAFF: 204}),
]


@pytest.mark.parametrize(("endpoint", "actor"), matrix(DRAFT_ENDPOINTS))
def test_draft_endpoints_refuse_whom_they_must(
    draft_world: World, endpoint: Endpoint, actor: str
) -> None:
    check(draft_world, endpoint, actor)


@pytest.mark.parametrize(("endpoint", "actor"), matrix(PUBLISHED_ENDPOINTS))
def test_published_endpoints_refuse_whom_they_must(
    published_world: World, endpoint: Endpoint, actor: str
) -> None:
    check(published_world, endpoint, actor)


def test_customers_may_not_write_posts(as_customer: ApiClient) -> None:
    response = as_customer.post("/posts", {"title": "x"})
    assert response.status_code == 403


def test_list_shows_published_posts_and_only_visible_drafts(anon: ApiClient) -> None:
    from django.utils import timezone

    author = UserFactory(roles=["Editor"])
    someone = staff_with("posts.create")
    published = PostFactory(user=author, published_at=timezone.now())
    draft = PostFactory(user=author)
    own_draft = PostFactory(user=someone)

    def ids(client: ApiClient, query: str = "") -> set[int]:
        response = client.get(f"/posts{query}")
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["count"] == len(body["items"])
        return {item["id"] for item in body["items"]}

    assert ids(anon) == {published.pk}
    as_someone = ApiClient(bearer_for(someone))
    assert ids(as_someone) == {published.pk, own_draft.pk}
    assert ids(as_someone, "?published=false") == {own_draft.pk}
    assert ids(as_someone, "?published=true") == {published.pk}
    # An editor holds posts.manage: every draft.
    as_author = ApiClient(bearer_for(author))
    assert ids(as_author) == {published.pk, draft.pk, own_draft.pk}
    assert ids(as_author, f"?user_id={someone.pk}") == {own_draft.pk}


def test_create_sanitizes_and_returns_the_contract_shape(
    as_editor: ApiClient, editor: User
) -> None:
    response = as_editor.post(
        "/posts",
        {
            "title": "  Hello  ",
            "body_html": '<p onclick="x()">Hi<script>alert(1)</script></p>'
            '<a href="javascript:alert(1)">bad</a><img src=x onerror=alert(1)>',
        },
    )
    assert response.status_code == 201, response.content
    post = response.json()
    assert set(post) == {
        "id", "user_id", "title", "body_html", "published_at", "created_at", "updated_at",
    }  # fmt: skip
    assert post["user_id"] == editor.pk
    assert post["title"] == "Hello"
    assert post["body_html"] == '<p>Hi</p><a rel="noopener noreferrer">bad</a><img>'
    assert post["published_at"] is None
    assert as_editor.get(f"/posts/{post['id']}").json() == post


def test_updates_are_sanitized_too(as_editor: ApiClient, editor: User) -> None:
    post = PostFactory(user=editor)
    response = as_editor.patch(
        f"/posts/{post.pk}", {"body_html": "<svg><p><style><img src=x onerror=alert(1)>"}
    )
    assert response.status_code == 200
    assert "onerror" not in response.json()["body_html"]


def test_publish_and_unpublish(as_editor: ApiClient, editor: User, anon: ApiClient) -> None:
    post = PostFactory(user=editor)
    published = as_editor.post(f"/posts/{post.pk}/publish").json()
    assert published["published_at"] is not None
    assert anon.get(f"/posts/{post.pk}").status_code == 200
    # Publishing again changes nothing (same timestamp, no second event).
    events = OutboxEvent.objects.count()
    assert as_editor.post(f"/posts/{post.pk}/publish").json() == published
    assert OutboxEvent.objects.count() == events
    assert as_editor.post(f"/posts/{post.pk}/unpublish").json()["published_at"] is None
    assert anon.get(f"/posts/{post.pk}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": None},
        {"title": "ok", "body_html": "x" * 100_001},
        {"title": "ok", "body_html": "\ud800"},
        {"title": "a\x00b"},
        {"title": "ok", "published": "yes please"},
        [],
        "text",
    ],
)
def test_bad_post_bodies_are_422(as_editor: ApiClient, body: object) -> None:
    response = as_editor.post("/posts", body)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"


def test_patch_with_null_is_422(as_editor: ApiClient, editor: User) -> None:
    post = PostFactory(user=editor)
    assert as_editor.patch(f"/posts/{post.pk}", {"published": None}).status_code == 422


@pytest.mark.parametrize("path", ["/posts/0", "/posts/99999999", "/posts/abc", "/posts/-1"])
def test_missing_posts(anon: ApiClient, path: str) -> None:
    assert anon.get(path).status_code == 404


def test_bad_list_query_is_422(anon: ApiClient) -> None:
    assert anon.get("/posts?limit=0").status_code == 422
    assert anon.get("/posts?published=maybe").status_code == 422


def test_bad_token_on_a_public_read_is_401(anon: ApiClient) -> None:
    response = anon.get("/posts", headers={"Authorization": "Bearer 1|nope"})
    assert response.status_code == 401


def test_inactive_author_cannot_read_own_draft(editor: User) -> None:
    draft = PostFactory(user=editor)
    token = bearer_for(editor)
    editor.is_active = False
    editor.save()
    # Inactive users cannot authenticate at all.
    assert ApiClient(token).get(f"/posts/{draft.pk}").status_code == 401


def test_deleting_a_post_drops_its_object_rights(as_editor: ApiClient, editor: User) -> None:
    from guardian.models import UserObjectPermission

    post = PostFactory(user=editor)
    assert UserObjectPermission.objects.filter(object_pk=str(post.pk)).count() == 3
    assert as_editor.delete(f"/posts/{post.pk}").status_code == 204
    assert not UserObjectPermission.objects.filter(
        object_pk=str(post.pk), content_type__app_label="content"
    ).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"title": "ok", "published": 0},
        {"title": "ok", "published": "true"},
        {"title": 5},
        {"title": "\x00"},
        {"title": "ok", "body_html": "a\x00b"},
    ],
)
def test_fields_take_only_their_own_json_kind(as_editor: ApiClient, body: object) -> None:
    assert as_editor.post("/posts", body).status_code == 422


def test_title_is_trimmed_of_ascii_space_only(as_editor: ApiClient) -> None:
    response = as_editor.post("/posts", {"title": " \t\u00a0Title\n"})
    assert response.status_code == 201
    assert response.json()["title"] == "\u00a0Title"
