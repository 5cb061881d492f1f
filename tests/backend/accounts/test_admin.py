"""Changes made on the admin site have the same effects as changes through the API."""

import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from backend.accounts.models import PersonalAccessToken, User
from backend.core.permissions import permission_rows
from realtime.models import OutboxEvent
from tests.factories import UserFactory, bearer_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client() -> Client:
    root = User.objects.create_superuser(email="root@example.com", password="x-root-pass-1")
    client = Client()
    client.force_login(root)
    return client


def change_user(client: Client, user: User, **fields: object) -> None:
    data = {
        "email": user.email,
        "name": user.name,
        "is_active": "on" if user.is_active else "",
        "groups": [g.pk for g in user.groups.all()],
        "last_login_0": "",
        "last_login_1": "",
    }
    data.update(fields)
    data = {k: v for k, v in data.items() if v != ""}
    response = client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]


def user_updated_events(user: User) -> list[dict]:
    rows = OutboxEvent.objects.filter(topic=f"user.{user.pk}", event="user.updated")
    return [json.loads(row.payload) for row in rows]


def test_renaming_in_the_admin_publishes_user_updated(admin_client: Client) -> None:
    user = UserFactory()
    change_user(admin_client, user, name="Renamed in admin")
    events = user_updated_events(user)
    assert [e["name"] for e in events] == ["Renamed in admin"]


def test_role_change_in_the_admin_publishes_new_permissions(admin_client: Client) -> None:
    user = UserFactory(roles=["Customer"])
    change_user(admin_client, user, groups=[Group.objects.get(name="Admin").pk])
    (event,) = user_updated_events(user)
    assert event["roles"] == ["Admin"]
    assert "orders.view_any" in event["permissions"]


def test_deactivation_in_the_admin_revokes_tokens(admin_client: Client) -> None:
    user = UserFactory()
    bearer_for(user)
    change_user(admin_client, user, is_active="")
    assert not PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert user_updated_events(user)[-1]["is_active"] is False


def test_saving_unchanged_user_publishes_nothing(admin_client: Client) -> None:
    user = UserFactory()
    change_user(admin_client, user)
    assert user_updated_events(user) == []


def test_granting_a_right_to_a_role_notifies_its_members(admin_client: Client) -> None:
    member = UserFactory(roles=["Customer"])
    outsider = UserFactory(roles=["Editor"])
    customer = Group.objects.get(name="Customer")
    extra = permission_rows(["orders.view_any"]).get()
    permissions = [*customer.permissions.values_list("pk", flat=True), extra.pk]
    response = admin_client.post(
        f"/admin/auth/group/{customer.pk}/change/",
        {
            "name": "Customer",
            "permissions": permissions,
            "role-TOTAL_FORMS": "1",
            "role-INITIAL_FORMS": "1",
            "role-MIN_NUM_FORMS": "0",
            "role-MAX_NUM_FORMS": "1",
            "role-0-id": customer.role.pk,
            "role-0-group": customer.pk,
            "role-0-description": customer.role.description,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    (event,) = user_updated_events(member)
    assert "orders.view_any" in event["permissions"]
    assert user_updated_events(outsider) == []
