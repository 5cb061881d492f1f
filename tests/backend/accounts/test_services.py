"""Services of the accounts area, called the way routers and jobs call them."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string

import backend.settings as production_settings
from backend.accounts import selectors, services
from backend.accounts.models import PersonalAccessToken, User
from backend.accounts.tokens import token_authenticate, token_issue
from backend.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthorized,
    ValidationFailed,
)
from backend.core.permissions import permission_rows
from realtime.models import OutboxEvent
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "glacier-Otter-517"


def _role(name: str, *permissions: str) -> Group:
    group = Group.objects.create(name=name)
    group.permissions.set(permission_rows(permissions))
    return group


def _events(user: User) -> list[dict]:
    rows = OutboxEvent.objects.filter(topic=f"user.{user.pk}", event="user.updated")
    return [json.loads(row.payload) for row in rows]


# --- register / login -----------------------------------------------------------------------
def test_register_gives_the_default_role_and_a_token() -> None:
    signed = services.user_register(name="N", email=" N@Example.com", password=STRONG)
    assert signed.user.email == "n@example.com"
    assert selectors.user_role_names(signed.user) == ["Customer"]
    assert token_authenticate(signed.issued.plain_text) is not None


def test_register_counts_attempts_per_client_address(settings) -> None:
    settings.REGISTER_RATE_LIMIT = "2/60"
    services.user_register(name="A", email="a@example.com", password=STRONG, client_address="1")
    with pytest.raises(Conflict):
        services.user_register(name="A", email="a@example.com", password=STRONG, client_address="1")
    with pytest.raises(Throttled) as refused:
        services.user_register(name="B", email="b@example.com", password=STRONG, client_address="1")
    assert 0 < refused.value.retry_after <= 61
    services.user_register(name="B", email="b@example.com", password=STRONG, client_address="2")


def test_login_throttles_after_the_configured_failures(settings) -> None:
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_FAILURE_WINDOW = 120
    user = UserFactory()
    for _ in range(3):
        with pytest.raises(Unauthorized):
            services.user_login(email=user.email, password="wrong")
    with pytest.raises(Throttled) as refused:
        services.user_login(email=user.email, password=DEFAULT_PASSWORD)
    assert 0 < refused.value.retry_after <= 121


def test_login_records_the_device_name() -> None:
    user = UserFactory()
    signed = services.user_login(email=user.email, password=DEFAULT_PASSWORD, device_name="tab")
    assert signed.issued.token.name == "tab" and signed.user == user


# --- password reset -------------------------------------------------------------------------
def test_reset_request_queues_a_job_only_for_active_users(
    django_capture_on_commit_callbacks,
) -> None:
    active, inactive = UserFactory(), UserFactory(is_active=False)
    for email, expected in ((active.email, 1), (inactive.email, 0), ("x@example.com", 0)):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            services.password_reset_request(email=email)
        assert len(callbacks) == expected, email


def test_reset_request_is_limited_per_address_whatever_the_email(settings) -> None:
    settings.FORGOT_PASSWORD_RATE_LIMIT = "1/60"
    services.password_reset_request(email="nobody@example.com", client_address="9.9.9.9")
    with pytest.raises(Throttled):
        services.password_reset_request(email="other@example.com", client_address="9.9.9.9")


def test_reset_complete_sets_the_password_and_revokes_every_token() -> None:
    user = UserFactory()
    issued = [token_issue(user=user) for _ in range(2)]
    token = default_token_generator.make_token(user)
    services.password_reset_complete(email=user.email.upper(), token=token, password=STRONG)
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert all(token_authenticate(t.plain_text) is None for t in issued)
    with pytest.raises(ValidationFailed):
        services.password_reset_complete(email=user.email, token=token, password=STRONG + "x")


# --- create ---------------------------------------------------------------------------------
def test_create_with_explicit_roles_and_with_none() -> None:
    admin = UserFactory(roles=["Admin"])
    editor = services.user_create(
        actor=admin, name="E", email="e@example.com", password=STRONG, roles=["Editor", "Editor"]
    )
    assert selectors.user_role_names(editor) == ["Editor"]
    bare = services.user_create(
        actor=admin, name="B", email="b@example.com", password=STRONG, roles=[]
    )
    assert selectors.user_role_names(bare) == []
    default = services.user_create(actor=admin, name="D", email="d@example.com", password=STRONG)
    assert selectors.user_role_names(default) == ["Customer"]


def test_create_refuses_role_escalation_and_unknown_roles() -> None:
    creator = UserFactory(roles=[_role("Creator", "users.create").name])
    with pytest.raises(PermissionDenied):
        services.user_create(
            actor=creator, name="X", email="x@example.com", password=STRONG, roles=["Admin"]
        )
    admin = UserFactory(roles=["Admin"])
    with pytest.raises(ValidationFailed):
        services.user_create(
            actor=admin, name="X", email="x@example.com", password=STRONG, roles=["Nope"]
        )
    assert not User.objects.filter(email="x@example.com").exists()


# --- update ---------------------------------------------------------------------------------
def test_update_publishes_the_profile_with_fresh_permissions() -> None:
    admin, user = UserFactory(roles=["Admin"]), UserFactory(roles=["Customer"])
    updated = services.user_update(actor=admin, user_id=user.pk, changes={"roles": ["Editor"]})
    assert selectors.user_role_names(updated) == ["Editor"]
    (event,) = _events(user)
    assert event["roles"] == ["Editor"]
    assert "posts.manage" in event["permissions"]
    assert event == {**selectors.user_profile(User.objects.get(pk=user.pk))}


def test_a_name_change_reads_the_user_once_and_returns_it_as_stored() -> None:
    user = UserFactory(roles=["Customer", "Editor"])
    with CaptureQueriesContext(connection) as queries:
        updated = services.user_update(actor=user, user_id=user.pk, changes={"name": "Renamed"})
    user_reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT `accounts_user`")
    ]
    # The locked read only: the saved instance is returned, not read again.
    assert len(user_reads) == 1 and "FOR UPDATE" in user_reads[0]
    stored = selectors.user_get(user_id=user.pk)
    assert stored is not None
    for field in ("name", "email", "is_active", "is_superuser", "updated_at", "password"):
        assert getattr(updated, field) == getattr(stored, field), field
    assert [g.name for g in updated.groups.all()] == [g.name for g in stored.groups.all()]
    (event,) = _events(user)
    assert event == selectors.user_profile(stored)
    assert event["name"] == "Renamed" and event["roles"] == ["Customer", "Editor"]


def test_update_password_only_publishes_nothing() -> None:
    user = UserFactory()
    services.user_update(
        actor=user,
        user_id=user.pk,
        changes={"password": STRONG, "current_password": DEFAULT_PASSWORD},
    )
    user.refresh_from_db()
    assert user.check_password(STRONG)
    assert _events(user) == []


def test_self_may_resend_unchanged_roles_and_active_flag() -> None:
    user = UserFactory(roles=["Customer"])
    services.user_update(
        actor=user,
        user_id=user.pk,
        changes={"name": "New", "roles": ["Customer"], "is_active": True},
    )
    assert User.objects.get(pk=user.pk).name == "New"


def test_a_refused_update_writes_nothing() -> None:
    user = UserFactory(roles=["Customer"], name="Before")
    with pytest.raises(PermissionDenied):
        services.user_update(
            actor=user, user_id=user.pk, changes={"name": "After", "roles": ["Admin"]}
        )
    admin = UserFactory(roles=["Admin"])
    with pytest.raises(ValidationFailed):
        services.user_update(
            actor=admin, user_id=user.pk, changes={"name": "After", "roles": ["Ghost"]}
        )
    fresh = User.objects.get(pk=user.pk)
    assert fresh.name == "Before"
    assert selectors.user_role_names(fresh) == ["Customer"]
    assert _events(user) == []


def test_update_visibility_rules() -> None:
    customer, other = UserFactory(), UserFactory()
    viewer = UserFactory(roles=[_role("Viewer", "users.view").name])
    with pytest.raises(NotFound):
        services.user_update(actor=customer, user_id=other.pk, changes={"name": "x"})
    with pytest.raises(PermissionDenied):
        services.user_update(actor=viewer, user_id=other.pk, changes={"name": "x"})
    admin = UserFactory(roles=["Admin"])
    with pytest.raises(NotFound):
        services.user_update(actor=admin, user_id=10**12, changes={"name": "x"})


def test_deactivation_revokes_tokens_and_self_deactivation_is_refused() -> None:
    admin, user = UserFactory(roles=["Admin"]), UserFactory()
    token = token_issue(user=user)
    services.user_update(actor=admin, user_id=user.pk, changes={"is_active": False})
    assert token_authenticate(token.plain_text) is None
    assert not PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert _events(user)[-1]["is_active"] is False
    with pytest.raises(Conflict):
        services.user_update(actor=admin, user_id=admin.pk, changes={"is_active": False})


# --- delete ---------------------------------------------------------------------------------
def test_delete_rules() -> None:
    admin, user = UserFactory(roles=["Admin"]), UserFactory()
    with pytest.raises(PermissionDenied):
        services.user_delete(actor=user, user_id=admin.pk)
    with pytest.raises(Conflict):
        services.user_delete(actor=admin, user_id=admin.pk)
    services.user_delete(actor=admin, user_id=user.pk)
    assert not User.objects.filter(pk=user.pk).exists()
    with pytest.raises(NotFound):
        services.user_delete(actor=admin, user_id=user.pk)


# --- selectors ------------------------------------------------------------------------------
def test_visible_selectors_hide_what_the_actor_may_not_see() -> None:
    customer, other = UserFactory(), UserFactory()
    assert selectors.user_get_visible(actor=customer, user_id=customer.pk) == customer
    with pytest.raises(NotFound):
        selectors.user_get_visible(actor=customer, user_id=other.pk)
    with pytest.raises(PermissionDenied):
        selectors.user_list_visible(actor=customer)
    admin = UserFactory(roles=["Admin"])
    assert selectors.user_list_visible(actor=admin, search=other.email).get() == other


# --- changing one's own credentials -----------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [{"password": STRONG}, {"email": "moved@example.com"}],
    ids=["password", "email"],
)
@pytest.mark.parametrize(
    "current", [None, "", "wrong-password-1"], ids=["missing", "empty", "wrong"]
)
def test_own_password_or_email_needs_the_current_password(
    changes: dict[str, str], current: str | None
) -> None:
    user = UserFactory()
    if current is not None:
        changes = {**changes, "current_password": current}
    with pytest.raises(ValidationFailed) as refused:
        services.user_update(actor=user, user_id=user.pk, changes=changes)
    assert [e.loc for e in refused.value.errors] == [["body", "current_password"]]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD) and user.email != "moved@example.com"


def test_resending_the_same_email_or_changing_the_name_needs_no_password() -> None:
    user = UserFactory()
    services.user_update(
        actor=user, user_id=user.pk, changes={"name": "New", "email": user.email.upper()}
    )
    user.refresh_from_db()
    assert user.name == "New"


def test_own_credential_change_revokes_every_other_token_and_keeps_the_one_used() -> None:
    user = UserFactory()
    used, other, another = (token_issue(user=user) for _ in range(3))
    services.user_update(
        actor=user,
        user_id=user.pk,
        changes={"password": STRONG, "current_password": DEFAULT_PASSWORD},
        token_id=used.token.pk,
    )
    assert token_authenticate(used.plain_text) is not None
    assert token_authenticate(other.plain_text) is None
    assert token_authenticate(another.plain_text) is None


def test_wrong_current_passwords_count_as_failed_logins(settings) -> None:
    settings.LOGIN_MAX_FAILURES = 2
    user = UserFactory()
    changes = {"password": STRONG, "current_password": "wrong-password-1"}
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            services.user_update(actor=user, user_id=user.pk, changes=changes)
    with pytest.raises(Throttled):
        services.user_update(
            actor=user,
            user_id=user.pk,
            changes={"password": STRONG, "current_password": DEFAULT_PASSWORD},
        )


def test_users_update_changes_another_users_password_without_theirs() -> None:
    admin = UserFactory(roles=["Admin"])
    user = UserFactory()
    kept = token_issue(user=user)
    services.user_update(
        actor=admin, user_id=user.pk, changes={"password": STRONG, "email": "new@example.com"}
    )
    user.refresh_from_db()
    assert user.check_password(STRONG) and user.email == "new@example.com"
    assert token_authenticate(kept.plain_text) is not None


def test_an_admin_changing_its_own_password_needs_it_too() -> None:
    admin = UserFactory(roles=["Admin"])
    with pytest.raises(ValidationFailed):
        services.user_update(actor=admin, user_id=admin.pk, changes={"password": STRONG})


# --- login limits -----------------------------------------------------------------------------
def test_login_is_limited_per_client_address_whatever_the_outcome(settings) -> None:
    settings.LOGIN_ADDRESS_RATE_LIMIT = "3/900"
    user = UserFactory()
    services.user_login(email=user.email, password=DEFAULT_PASSWORD, client_address="5.5.5.5")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            services.user_login(email="nobody@example.com", password="x", client_address="5.5.5.5")
    with pytest.raises(Throttled) as refused:
        services.user_login(email=user.email, password=DEFAULT_PASSWORD, client_address="5.5.5.5")
    assert 0 < refused.value.retry_after <= 900
    services.user_login(email=user.email, password=DEFAULT_PASSWORD, client_address="6.6.6.6")


@pytest.mark.parametrize("hasher_path", production_settings.PASSWORD_HASHERS)
def test_login_works_for_users_hashed_with_every_configured_hasher(
    settings, hasher_path: str
) -> None:
    """Every hasher production lists has its library installed: no 500 on login."""
    settings.PASSWORD_HASHERS = production_settings.PASSWORD_HASHERS
    algorithm = import_string(hasher_path).algorithm
    user = UserFactory()
    user.password = make_password(STRONG, hasher=algorithm)
    user.save(update_fields=["password"])
    assert user.password.startswith(algorithm)
    assert services.user_login(email=user.email, password=STRONG).user.pk == user.pk
    with pytest.raises(Unauthorized):
        services.user_login(email=user.email, password="not-" + STRONG)
