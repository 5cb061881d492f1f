"""/auth: register, login, logout, forgot/reset password, me; tokens as a client sees them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils import timezone

from backend.accounts.catalog import default_roles, permission_names
from backend.accounts.models import PersonalAccessToken, User
from tests.conftest import ApiClient
from tests.factories import DEFAULT_PASSWORD, UserFactory, bearer_for

pytestmark = pytest.mark.django_db

USER_KEYS = {"id", "name", "email", "is_active", "roles", "created_at", "updated_at"}
STRONG = "glacier-Otter-517"


def _register(
    client: ApiClient, email: str = "new@example.com", password: str = STRONG, **extra: str
):
    body = {"name": "New Person", "email": email, "password": password}
    return client.post("/auth/register", body, **extra)


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.utcoffset() == timedelta(0), text
    return value


# --- register -------------------------------------------------------------------------------
def test_register_answers_a_working_token_and_the_user(anon: ApiClient) -> None:
    response = _register(anon, email="  New@Example.COM ")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "token_type", "expires_at", "user"}
    assert body["token_type"] == "Bearer"
    token_id, _, secret = body["token"].partition("|")
    assert token_id.isdigit() and len(secret) >= 40
    expires = _parse_time(body["expires_at"])
    assert timedelta(days=29) < expires - timezone.now() <= timedelta(days=30)
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["email"] == "new@example.com"
    assert user["name"] == "New Person"
    assert user["roles"] == ["Customer"]
    assert user["is_active"] is True
    _parse_time(user["created_at"])
    _parse_time(user["updated_at"])
    # The stored secret is a hash, never the token itself.
    stored = PersonalAccessToken.objects.get(pk=int(token_id))
    assert secret not in stored.token_hash and len(stored.token_hash) == 64

    me = ApiClient(body["token"]).get("/auth/me")
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


def test_register_with_a_taken_email_is_a_conflict(
    anon: ApiClient, customer: User, problem
) -> None:
    body = problem(_register(anon, email=customer.email.upper()), 409)
    assert body["errors"][0]["loc"] == ["body", "email"]
    assert User.objects.filter(email=customer.email).count() == 1


@pytest.mark.parametrize(
    "password",
    ["short1!", "1234567890123", "password123", "new@example.com"],
    ids=["too-short", "numeric", "common", "same-as-email"],
)
def test_register_rejects_weak_passwords(anon: ApiClient, problem, password: str) -> None:
    body = problem(_register(anon, password=password), 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "password")}
    assert not User.objects.filter(email="new@example.com").exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@b.com", "a b@c.com", ""])
def test_register_rejects_bad_emails(anon: ApiClient, problem, email: str) -> None:
    body = problem(_register(anon, email=email), 422)
    assert ["body", "email"] in [e["loc"] for e in body["errors"]]
    assert User.objects.count() == 0


def test_register_reports_every_missing_field(anon: ApiClient, problem) -> None:
    body = problem(anon.post("/auth/register", {}), 422)
    locs = sorted(tuple(e["loc"]) for e in body["errors"])
    assert locs == [("body", "email"), ("body", "name"), ("body", "password")]


def test_register_is_limited_per_client_address(anon: ApiClient, settings, problem) -> None:
    settings.REGISTER_RATE_LIMIT = "3/3600"
    for n in range(3):
        assert _register(anon, email=f"r{n}@example.com").status_code == 201
    refused = anon.post(
        "/auth/register", {"name": "X", "email": "r9@example.com", "password": STRONG}
    )
    problem(refused, 429)
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert not User.objects.filter(email="r9@example.com").exists()
    # Another address is not affected.
    other = anon.post(
        "/auth/register",
        {"name": "X", "email": "r9@example.com", "password": STRONG},
        REMOTE_ADDR="10.1.2.3",
    )
    assert other.status_code == 201


def test_failed_registrations_count_against_the_limit(anon: ApiClient, settings, problem) -> None:
    settings.REGISTER_RATE_LIMIT = "2/3600"
    assert _register(anon, password="password123").status_code == 422  # a common password
    assert _register(anon, email=UserFactory().email).status_code == 409
    problem(_register(anon), 429)


def test_forwarded_for_is_ignored_without_proxies(anon: ApiClient, settings, problem) -> None:
    settings.REGISTER_RATE_LIMIT = "1/3600"
    settings.NUM_PROXIES = 0
    assert _register(anon, email="a@example.com", HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 201
    problem(_register(anon, email="b@example.com", HTTP_X_FORWARDED_FOR="2.2.2.2"), 429)


def test_behind_a_proxy_the_address_it_saw_counts(anon: ApiClient, settings, problem) -> None:
    settings.REGISTER_RATE_LIMIT = "1/3600"
    settings.NUM_PROXIES = 1
    first = _register(anon, email="a@example.com", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.5")
    assert first.status_code == 201
    # A client forging the left part of the header is still the same client.
    problem(_register(anon, email="b@example.com", HTTP_X_FORWARDED_FOR="7.7.7.7, 10.0.0.5"), 429)
    # A different client behind the same proxy is not.
    assert (
        _register(anon, email="c@example.com", HTTP_X_FORWARDED_FOR="10.0.0.6").status_code == 201
    )


# --- login ----------------------------------------------------------------------------------
def test_login_answers_a_token_for_the_device(anon: ApiClient, customer: User) -> None:
    response = anon.post(
        "/auth/login",
        {"email": customer.email.upper(), "password": DEFAULT_PASSWORD, "device_name": "phone"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["user"]["id"] == customer.pk
    assert set(body["user"]) == USER_KEYS
    token = PersonalAccessToken.objects.get(pk=int(body["token"].split("|")[0]))
    assert token.user_id == customer.pk and token.name == "phone"
    assert ApiClient(body["token"]).get("/auth/me").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [("user-that-is-not@example.com", DEFAULT_PASSWORD), (None, "wrong-password-1")],
    ids=["unknown-email", "wrong-password"],
)
def test_login_refuses_wrong_credentials(
    anon: ApiClient, customer: User, problem, email: str | None, password: str
) -> None:
    response = anon.post("/auth/login", {"email": email or customer.email, "password": password})
    problem(response, 401)
    assert not PersonalAccessToken.objects.filter(user=customer).exists()


def test_login_refuses_an_inactive_user(anon: ApiClient, problem) -> None:
    user = UserFactory(is_active=False)
    problem(anon.post("/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}), 401)


def test_login_is_throttled_after_five_failures_for_one_email(
    anon: ApiClient, customer: User, problem
) -> None:
    for _ in range(5):
        wrong = anon.post("/auth/login", {"email": customer.email, "password": "nope-nope-1"})
        assert wrong.status_code == 401
    # Even the right password is refused now, and the client is told when to come back.
    refused = anon.post("/auth/login", {"email": customer.email, "password": DEFAULT_PASSWORD})
    problem(refused, 429)
    assert 0 < int(refused["Retry-After"]) <= 15 * 60 + 1
    # The limit is per email: another account signs in from the same address.
    other = UserFactory()
    ok = anon.post("/auth/login", {"email": other.email, "password": DEFAULT_PASSWORD})
    assert ok.status_code == 200


def test_login_throttle_ignores_case_of_the_email(anon: ApiClient, customer: User, problem) -> None:
    for n in range(5):
        email = customer.email.upper() if n % 2 else customer.email
        anon.post("/auth/login", {"email": email, "password": "nope-nope-1"})
    problem(anon.post("/auth/login", {"email": customer.email, "password": DEFAULT_PASSWORD}), 429)


def test_a_successful_login_resets_the_failure_count(anon: ApiClient, customer: User) -> None:
    for _ in range(4):
        anon.post("/auth/login", {"email": customer.email, "password": "nope-nope-1"})
    good = {"email": customer.email, "password": DEFAULT_PASSWORD}
    assert anon.post("/auth/login", good).status_code == 200
    for _ in range(4):
        anon.post("/auth/login", {"email": customer.email, "password": "nope-nope-1"})
    assert anon.post("/auth/login", good).status_code == 200


# --- logout, tokens -------------------------------------------------------------------------
def test_logout_revokes_only_the_token_used(customer: User, problem) -> None:
    phone, laptop = ApiClient(bearer_for(customer)), ApiClient(bearer_for(customer))
    response = phone.post("/auth/logout")
    assert response.status_code == 204
    assert response.content == b""
    problem(phone.get("/auth/me"), 401)
    problem(phone.post("/auth/logout"), 401)
    assert laptop.get("/auth/me").status_code == 200


def test_anonymous_callers_get_401_with_a_bearer_challenge(anon: ApiClient, problem) -> None:
    for path in ("/auth/me", "/users", "/roles", "/permissions"):
        response = anon.get(path)
        problem(response, 401)
        assert response["WWW-Authenticate"] == "Bearer"
    problem(anon.post("/auth/logout"), 401)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ",
        "Bearer abc",
        "Bearer 1|",
        "Bearer |secret",
        "Bearer ²|secret",
        "Bearer 99999999999|secret",
        "Bearer 9999999999999999999999999999|secret",
        "Bearer " + "x" * 5000,
        "Basic dXNlcjpwYXNz",
        "bearer",
        "Token 1|abc",
    ],
)
def test_malformed_or_unknown_tokens_are_401(customer: User, problem, header: str) -> None:
    response = ApiClient().get("/auth/me", headers={"Authorization": header})
    problem(response, 401)


def test_a_token_with_the_wrong_secret_is_401(customer: User, problem) -> None:
    token_id, _, secret = bearer_for(customer).partition("|")
    forged = f"{token_id}|{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    problem(ApiClient(forged).get("/auth/me"), 401)


def test_an_expired_token_is_401(customer: User, problem) -> None:
    token = bearer_for(customer)
    PersonalAccessToken.objects.filter(pk=int(token.split("|")[0])).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    problem(ApiClient(token).get("/auth/me"), 401)


def test_a_deactivated_users_token_is_401(customer: User, problem) -> None:
    token = bearer_for(customer)
    User.objects.filter(pk=customer.pk).update(is_active=False)
    problem(ApiClient(token).get("/auth/me"), 401)


def test_using_a_token_records_last_used_at(customer: User) -> None:
    token = bearer_for(customer)
    row = PersonalAccessToken.objects.get(pk=int(token.split("|")[0]))
    assert row.last_used_at is None
    assert ApiClient(token).get("/auth/me").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert timezone.now() - row.last_used_at < timedelta(seconds=30)


# --- me -------------------------------------------------------------------------------------
def test_me_shows_roles_and_the_flat_permission_list(
    as_customer: ApiClient, customer: User
) -> None:
    body = as_customer.get("/auth/me").json()
    assert set(body) == USER_KEYS | {"permissions"}
    assert body["id"] == customer.pk
    assert body["roles"] == ["Customer"]
    assert body["permissions"] == sorted(default_roles()["Customer"][1])
    assert "password" not in str(body)


def test_me_of_an_admin_lists_every_permission(as_admin: ApiClient) -> None:
    body = as_admin.get("/auth/me").json()
    assert body["roles"] == ["Admin"]
    assert body["permissions"] == sorted(permission_names())


# --- forgot / reset password ----------------------------------------------------------------
def test_forgot_password_answers_the_same_for_known_and_unknown_emails(
    anon: ApiClient, customer: User
) -> None:
    known = anon.post("/auth/forgot-password", {"email": customer.email})
    unknown = anon.post("/auth/forgot-password", {"email": "nobody@example.com"})
    malformed = anon.post("/auth/forgot-password", {"email": "not an email"})
    assert known.status_code == unknown.status_code == malformed.status_code == 202
    assert known.json() == unknown.json() == malformed.json()


def test_forgot_password_is_limited_per_client_address(anon: ApiClient, settings, problem) -> None:
    settings.FORGOT_PASSWORD_RATE_LIMIT = "2/600"
    for _ in range(2):
        assert anon.post("/auth/forgot-password", {"email": "x@example.com"}).status_code == 202
    refused = anon.post("/auth/forgot-password", {"email": "x@example.com"})
    problem(refused, 429)
    assert 0 < int(refused["Retry-After"]) <= 601
    elsewhere = anon.post(
        "/auth/forgot-password", {"email": "x@example.com"}, REMOTE_ADDR="192.0.2.7"
    )
    assert elsewhere.status_code == 202


def test_reset_password_sets_the_password_and_revokes_every_token(
    anon: ApiClient, customer: User, problem
) -> None:
    tokens = [bearer_for(customer), bearer_for(customer)]
    reset = default_token_generator.make_token(customer)
    response = anon.post(
        "/auth/reset-password", {"email": customer.email, "token": reset, "password": STRONG}
    )
    assert response.status_code == 204
    for token in tokens:
        problem(ApiClient(token).get("/auth/me"), 401)
    old = anon.post("/auth/login", {"email": customer.email, "password": DEFAULT_PASSWORD})
    problem(old, 401)
    new = anon.post("/auth/login", {"email": customer.email, "password": STRONG})
    assert new.status_code == 200
    # The token was spent with the old password: a second use is refused.
    again = anon.post(
        "/auth/reset-password",
        {"email": customer.email, "token": reset, "password": "another-Fine-pass-2"},
    )
    body = problem(again, 422)
    assert body["errors"][0]["loc"] == ["body", "token"]


def _expired_token(user: User) -> str:
    generator = default_token_generator
    long_ago = generator._num_seconds(generator._now()) - 2 * 3600  # type: ignore[attr-defined]
    return generator._make_token_with_timestamp(user, long_ago, generator.secret)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["garbage", "expired", "other-users", "wrong-email"])
def test_reset_password_refuses_bad_tokens(
    anon: ApiClient, customer: User, problem, settings, kind: str
) -> None:
    settings.PASSWORD_RESET_TIMEOUT = 3600
    other = UserFactory()
    token, email = {
        "garbage": ("abc-def", customer.email),
        "expired": (_expired_token(customer), customer.email),
        "other-users": (default_token_generator.make_token(other), customer.email),
        "wrong-email": (default_token_generator.make_token(customer), other.email),
    }[kind]
    live = bearer_for(customer)
    response = anon.post(
        "/auth/reset-password", {"email": email, "token": token, "password": STRONG}
    )
    problem(response, 422)
    customer.refresh_from_db()
    other.refresh_from_db()
    assert customer.check_password(DEFAULT_PASSWORD) and other.check_password(DEFAULT_PASSWORD)
    assert ApiClient(live).get("/auth/me").status_code == 200


def test_reset_password_refuses_a_weak_new_password(
    anon: ApiClient, customer: User, problem
) -> None:
    reset = default_token_generator.make_token(customer)
    response = anon.post(
        "/auth/reset-password", {"email": customer.email, "token": reset, "password": "12345"}
    )
    body = problem(response, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "password")}
    customer.refresh_from_db()
    assert customer.check_password(DEFAULT_PASSWORD)
