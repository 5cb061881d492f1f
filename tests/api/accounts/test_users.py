"""/users: list, create, read, update, delete, and every permission rule tried from outside."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from backend.accounts.models import PersonalAccessToken, User
from backend.core.permissions import permission_rows
from realtime.models import OutboxEvent
from tests.conftest import ApiClient
from tests.factories import DEFAULT_PASSWORD, UserFactory, bearer_for

pytestmark = pytest.mark.django_db

USER_KEYS = {"id", "name", "email", "is_active", "roles", "created_at", "updated_at"}
STRONG = "glacier-Otter-517"


def _role(name: str, *permissions: str) -> str:
    group = Group.objects.create(name=name)
    group.permissions.set(permission_rows(permissions))
    return name


def _client_with(*permissions: str) -> tuple[User, ApiClient]:
    user = UserFactory(roles=[_role("Custom", *permissions)])
    return user, ApiClient(bearer_for(user))


def _snapshot(user: User) -> tuple:
    user = User.objects.get(pk=user.pk)
    roles = sorted(user.groups.values_list("name", flat=True))
    return (user.name, user.email, user.is_active, user.password, roles, user.updated_at)


def _user_events(user: User) -> int:
    return OutboxEvent.objects.filter(topic=f"user.{user.pk}", event="user.updated").count()


# --- list -----------------------------------------------------------------------------------
def test_list_pages_with_limit_and_offset(as_admin: ApiClient, admin_user: User) -> None:
    others = [UserFactory() for _ in range(4)]
    everyone = [admin_user.pk, *(u.pk for u in others)]
    first = as_admin.get("/users?limit=2")
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"items", "count"}
    assert body["count"] == 5
    assert [u["id"] for u in body["items"]] == everyone[:2]
    rest = as_admin.get("/users?limit=2&offset=2").json()
    assert [u["id"] for u in rest["items"]] == everyone[2:4]
    assert rest["count"] == 5
    past_the_end = as_admin.get("/users?offset=50").json()
    assert past_the_end == {"items": [], "count": 5}
    default = as_admin.get("/users").json()
    assert len(default["items"]) == 5
    for item in default["items"]:
        assert set(item) == USER_KEYS


def test_list_default_page_is_twenty(as_admin: ApiClient) -> None:
    UserFactory.create_batch(21)
    body = as_admin.get("/users").json()
    assert len(body["items"]) == 20
    assert body["count"] == 22


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=1000", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999999", "offset"),
        ("search=" + "x" * 200, "search"),
    ],
)
def test_list_rejects_bad_paging(as_admin: ApiClient, problem, query: str, loc: str) -> None:
    body = problem(as_admin.get(f"/users?{query}"), 422)
    assert ["query", loc] in [e["loc"] for e in body["errors"]]


def test_list_search_matches_name_or_email_ignoring_case(as_admin: ApiClient) -> None:
    ada = UserFactory(name="Ada Lovelace", email="ada@analytical.example")
    grace = UserFactory(name="Grace Hopper", email="grace@navy.example")
    UserFactory(name="Someone Else")

    def ids(term: str) -> list[int]:
        return [u["id"] for u in as_admin.get("/users", data={"search": term}).json()["items"]]

    assert ids("LOVELACE") == [ada.pk]
    assert ids("navy.EXAMPLE") == [grace.pk]
    assert ids("a") and set(ids("a")) >= {ada.pk, grace.pk}
    assert ids("no such person") == []
    assert as_admin.get("/users", data={"search": "%"}).json()["count"] == 0
    assert as_admin.get("/users", data={"search": "_"}).json()["count"] == 0


def test_list_never_shows_passwords(as_admin: ApiClient) -> None:
    UserFactory()
    text = as_admin.get("/users").content.decode()
    assert "password" not in text and "md5$" not in text and "pbkdf2" not in text


def test_list_query_count_does_not_grow_with_the_page(
    as_admin: ApiClient, django_assert_max_num_queries
) -> None:
    UserFactory.create_batch(3, roles=["Customer", "Editor"])
    with django_assert_max_num_queries(8) as few:
        assert len(as_admin.get("/users?limit=100").json()["items"]) == 4
    UserFactory.create_batch(40, roles=["Customer", "Editor"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = as_admin.get("/users?limit=100").json()
    assert len(body["items"]) == 44
    assert all(u["roles"] == ["Customer", "Editor"] for u in body["items"][1:])


def test_listing_needs_users_view(anon: ApiClient, as_customer: ApiClient, problem) -> None:
    problem(anon.get("/users"), 401)
    problem(as_customer.get("/users"), 403)


def test_an_editor_without_users_view_cannot_list(as_editor: ApiClient, problem) -> None:
    problem(as_editor.get("/users"), 403)


def test_a_role_with_users_view_can_list() -> None:
    _, client = _client_with("users.view")
    assert client.get("/users").status_code == 200


# --- create ---------------------------------------------------------------------------------
def test_admin_creates_a_user_with_roles(as_admin: ApiClient) -> None:
    response = as_admin.post(
        "/users",
        {"name": "Eve Editor", "email": "Eve@Example.com", "password": STRONG, "roles": ["Editor"]},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == USER_KEYS
    assert body["email"] == "eve@example.com" and body["roles"] == ["Editor"]
    login = ApiClient().post("/auth/login", {"email": "eve@example.com", "password": STRONG})
    assert login.status_code == 200


def test_created_users_get_the_default_role(as_admin: ApiClient) -> None:
    body = as_admin.post(
        "/users", {"name": "Plain", "email": "plain@example.com", "password": STRONG}
    ).json()
    assert body["roles"] == ["Customer"]


def test_create_refuses_duplicates_unknown_roles_and_weak_passwords(
    as_admin: ApiClient, customer: User, problem
) -> None:
    taken = {"name": "X", "email": customer.email, "password": STRONG}
    problem(as_admin.post("/users", taken), 409)
    unknown = {"name": "X", "email": "x@example.com", "password": STRONG, "roles": ["Wizard"]}
    body = problem(as_admin.post("/users", unknown), 422)
    assert body["errors"][0]["loc"] == ["body", "roles"]
    weak = {"name": "X", "email": "x@example.com", "password": "123"}
    problem(as_admin.post("/users", weak), 422)
    assert not User.objects.filter(email="x@example.com").exists()


@pytest.mark.parametrize("who", ["anon", "customer", "editor"])
def test_create_needs_users_create(request, problem, who: str) -> None:
    client = request.getfixturevalue("anon" if who == "anon" else f"as_{who}")
    response = client.post("/users", {"name": "X", "email": "x@example.com", "password": STRONG})
    problem(response, 401 if who == "anon" else 403)
    assert not User.objects.filter(email="x@example.com").exists()


def test_users_create_alone_cannot_hand_out_roles(problem) -> None:
    _, client = _client_with("users.create")
    admin = {"name": "X", "email": "x@example.com", "password": STRONG, "roles": ["Admin"]}
    problem(client.post("/users", admin), 403)
    assert not User.objects.filter(email="x@example.com").exists()
    plain = {"name": "X", "email": "x@example.com", "password": STRONG}
    assert client.post("/users", plain).json()["roles"] == ["Customer"]


# --- read -----------------------------------------------------------------------------------
def test_a_user_reads_itself(as_customer: ApiClient, customer: User) -> None:
    body = as_customer.get(f"/users/{customer.pk}").json()
    assert set(body) == USER_KEYS
    assert body["id"] == customer.pk and body["email"] == customer.email


def test_another_user_looks_exactly_like_a_missing_one(
    as_customer: ApiClient, editor: User, problem
) -> None:
    hidden = problem(as_customer.get(f"/users/{editor.pk}"), 404)
    missing = problem(as_customer.get("/users/987654321"), 404)
    assert hidden == missing


def test_users_view_reads_anyone(as_admin: ApiClient, customer: User, problem) -> None:
    assert as_admin.get(f"/users/{customer.pk}").json()["id"] == customer.pk
    problem(as_admin.get("/users/987654321"), 404)
    problem(as_admin.get("/users/99999999999999999999999999"), 404)
    problem(as_admin.get("/users/abc"), 404)


# --- update ---------------------------------------------------------------------------------
def test_a_user_changes_its_own_name_email_and_password(
    as_customer: ApiClient, customer: User
) -> None:
    response = as_customer.patch(
        f"/users/{customer.pk}",
        {
            "name": "Renamed",
            "email": "Renamed@Example.com",
            "password": STRONG,
            "current_password": DEFAULT_PASSWORD,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed" and body["email"] == "renamed@example.com"
    assert body["roles"] == ["Customer"]
    login = ApiClient().post("/auth/login", {"email": "renamed@example.com", "password": STRONG})
    assert login.status_code == 200
    assert _user_events(customer) == 1


def test_patch_changes_only_the_fields_given(as_customer: ApiClient, customer: User) -> None:
    body = as_customer.patch(f"/users/{customer.pk}", {"name": "Only Name"}).json()
    assert body["name"] == "Only Name" and body["email"] == customer.email
    customer.refresh_from_db()
    assert customer.check_password(DEFAULT_PASSWORD)


def test_put_needs_the_full_editable_representation(
    as_customer: ApiClient, customer: User, problem
) -> None:
    body = problem(as_customer.put(f"/users/{customer.pk}", {"name": "X"}), 422)
    assert ["body", "email"] in [e["loc"] for e in body["errors"]]
    # Sending back what GET answered, including unchanged roles and active flag, is fine.
    current = as_customer.get(f"/users/{customer.pk}").json()
    current["name"] = "Put Name"
    response = as_customer.put(f"/users/{customer.pk}", current)
    assert response.status_code == 200
    assert response.json()["name"] == "Put Name"


def test_a_customer_cannot_edit_another_user(as_customer: ApiClient, editor: User, problem) -> None:
    before = _snapshot(editor)
    hidden = problem(as_customer.patch(f"/users/{editor.pk}", {"name": "Hacked"}), 404)
    missing = problem(as_customer.patch("/users/987654321", {"name": "Hacked"}), 404)
    assert hidden == missing
    problem(as_customer.put(f"/users/{editor.pk}", {"name": "H", "email": "h@example.com"}), 404)
    assert _snapshot(editor) == before
    assert _user_events(editor) == 0


@pytest.mark.parametrize(
    "change",
    [{"roles": ["Admin"]}, {"roles": []}, {"is_active": False}, {"name": "Y", "roles": ["Admin"]}],
)
def test_a_customer_cannot_change_its_own_roles_or_active_flag(
    as_customer: ApiClient, customer: User, problem, change: dict
) -> None:
    before = _snapshot(customer)
    problem(as_customer.patch(f"/users/{customer.pk}", change), 403)
    assert _snapshot(customer) == before
    assert _user_events(customer) == 0
    assert as_customer.get("/auth/me").json()["roles"] == ["Customer"]


def test_users_view_without_users_update_is_refused_not_hidden(customer: User, problem) -> None:
    _, client = _client_with("users.view")
    before = _snapshot(customer)
    problem(client.patch(f"/users/{customer.pk}", {"name": "Nope"}), 403)
    assert _snapshot(customer) == before


def test_an_editor_cannot_edit_other_users(as_editor: ApiClient, customer: User, problem) -> None:
    before = _snapshot(customer)
    problem(as_editor.patch(f"/users/{customer.pk}", {"roles": ["Editor"]}), 404)
    assert _snapshot(customer) == before


def test_anonymous_cannot_edit(anon: ApiClient, customer: User, problem) -> None:
    before = _snapshot(customer)
    problem(anon.patch(f"/users/{customer.pk}", {"name": "Nope"}), 401)
    assert _snapshot(customer) == before


def test_admin_changes_roles_and_the_user_sees_them(as_admin: ApiClient, customer: User) -> None:
    own = ApiClient(bearer_for(customer))
    response = as_admin.patch(f"/users/{customer.pk}", {"roles": ["Editor", "Customer"]})
    assert response.status_code == 200
    assert response.json()["roles"] == ["Customer", "Editor"]
    me = own.get("/auth/me").json()
    assert me["roles"] == ["Customer", "Editor"]
    assert "posts.manage" in me["permissions"]
    event = OutboxEvent.objects.filter(topic=f"user.{customer.pk}").latest("id")
    assert event.event == "user.updated"
    assert '"Editor"' in event.payload and "posts.manage" in event.payload


def test_deactivating_a_user_revokes_its_tokens(
    as_admin: ApiClient, customer: User, problem
) -> None:
    tokens = [bearer_for(customer), bearer_for(customer)]
    response = as_admin.patch(f"/users/{customer.pk}", {"is_active": False})
    assert response.status_code == 200 and response.json()["is_active"] is False
    for token in tokens:
        problem(ApiClient(token).get("/auth/me"), 401)
    assert not PersonalAccessToken.objects.filter(user=customer, revoked_at__isnull=True).exists()
    login = ApiClient().post("/auth/login", {"email": customer.email, "password": DEFAULT_PASSWORD})
    problem(login, 401)
    # Reactivated, the user signs in again; the old tokens stay dead.
    as_admin.patch(f"/users/{customer.pk}", {"is_active": True})
    login = ApiClient().post("/auth/login", {"email": customer.email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200
    problem(ApiClient(tokens[0]).get("/auth/me"), 401)


def test_admin_cannot_deactivate_itself(as_admin: ApiClient, admin_user: User, problem) -> None:
    problem(as_admin.patch(f"/users/{admin_user.pk}", {"is_active": False}), 409)
    assert User.objects.get(pk=admin_user.pk).is_active


def test_update_refuses_taken_emails_unknown_roles_and_bad_values(
    as_admin: ApiClient, customer: User, editor: User, problem
) -> None:
    before = _snapshot(customer)
    url = f"/users/{customer.pk}"
    problem(as_admin.patch(url, {"email": editor.email.upper()}), 409)
    problem(as_admin.patch(url, {"roles": ["Customer", "Wizard"]}), 422)
    problem(as_admin.patch(url, {"email": "not-an-email"}), 422)
    problem(as_admin.patch(url, {"password": "123"}), 422)
    for bad in ({"name": None}, {"name": ""}, {"name": "   "}, {"is_active": "maybe"}):
        problem(as_admin.patch(url, bad), 422)
    problem(as_admin.patch("/users/987654321", {"name": "Ghost"}), 404)
    assert _snapshot(customer) == before


def test_a_no_op_update_publishes_nothing(as_customer: ApiClient, customer: User) -> None:
    response = as_customer.patch(f"/users/{customer.pk}", {"name": customer.name})
    assert response.status_code == 200
    assert _user_events(customer) == 0


# --- delete ---------------------------------------------------------------------------------
def test_admin_deletes_a_user(as_admin: ApiClient, customer: User, problem) -> None:
    token = bearer_for(customer)
    response = as_admin.delete(f"/users/{customer.pk}")
    assert response.status_code == 204 and response.content == b""
    problem(as_admin.get(f"/users/{customer.pk}"), 404)
    problem(ApiClient(token).get("/auth/me"), 401)
    problem(as_admin.delete(f"/users/{customer.pk}"), 404)


@pytest.mark.parametrize("who", ["anon", "customer", "editor"])
def test_delete_needs_users_delete(request, editor: User, problem, who: str) -> None:
    victim = UserFactory()
    client = request.getfixturevalue("anon" if who == "anon" else f"as_{who}")
    problem(client.delete(f"/users/{victim.pk}"), 401 if who == "anon" else 403)
    assert User.objects.filter(pk=victim.pk).exists()


def test_a_customer_cannot_delete_itself(as_customer: ApiClient, customer: User, problem) -> None:
    problem(as_customer.delete(f"/users/{customer.pk}"), 403)
    assert User.objects.filter(pk=customer.pk).exists()


def test_admin_cannot_delete_itself(as_admin: ApiClient, admin_user: User, problem) -> None:
    problem(as_admin.delete(f"/users/{admin_user.pk}"), 409)
    assert User.objects.filter(pk=admin_user.pk).exists()


# --- changing one's own password or email -----------------------------------------------------
@pytest.mark.parametrize(
    "change", [{"password": STRONG}, {"email": "moved@example.com"}], ids=["password", "email"]
)
@pytest.mark.parametrize("current", [None, "wrong-password-1"], ids=["missing", "wrong"])
def test_own_password_or_email_change_needs_the_current_password(
    customer: User, problem, change: dict[str, str], current: str | None
) -> None:
    client = ApiClient(bearer_for(customer))
    body = dict(change) if current is None else {**change, "current_password": current}
    refused = problem(client.patch(f"/users/{customer.pk}", body), 422)
    assert [e["loc"] for e in refused["errors"]] == [["body", "current_password"]]
    customer.refresh_from_db()
    assert customer.check_password(DEFAULT_PASSWORD) and customer.email != "moved@example.com"


def test_own_credential_change_revokes_the_other_tokens_only(customer: User) -> None:
    used, other = ApiClient(bearer_for(customer)), ApiClient(bearer_for(customer, "laptop"))
    response = used.patch(
        f"/users/{customer.pk}",
        {"email": "moved@example.com", "current_password": DEFAULT_PASSWORD},
    )
    assert response.status_code == 200
    assert used.get("/auth/me").status_code == 200
    assert other.get("/auth/me").status_code == 401


def test_users_update_changes_another_users_password_without_it(
    as_admin: ApiClient, customer: User
) -> None:
    theirs = ApiClient(bearer_for(customer))
    response = as_admin.patch(f"/users/{customer.pk}", {"password": STRONG})
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.check_password(STRONG)
    assert theirs.get("/auth/me").status_code == 200
