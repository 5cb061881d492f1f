"""/roles and /permissions: what the front end's role editor and guards read."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from backend.accounts.catalog import default_roles, permission_specs
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_roles_list_every_role_with_its_permission_names(as_customer: ApiClient) -> None:
    response = as_customer.get("/roles")
    assert response.status_code == 200
    roles = {role["name"]: role for role in response.json()}
    assert set(default_roles()) <= set(roles)
    for name, (description, granted) in default_roles().items():
        role = roles[name]
        assert set(role) == {"id", "name", "description", "permissions"}
        assert isinstance(role["id"], int)
        assert role["description"] == description
        assert role["permissions"] == sorted(granted)
    assert roles["Admin"]["permissions"] == sorted(p.name for p in permission_specs())


def test_a_group_made_by_hand_shows_up_without_a_description(as_editor: ApiClient) -> None:
    Group.objects.create(name="Auditors")
    roles = {role["name"]: role for role in as_editor.get("/roles").json()}
    assert roles["Auditors"] == {
        "id": roles["Auditors"]["id"],
        "name": "Auditors",
        "description": "",
        "permissions": [],
    }


def test_permissions_carry_group_and_description(as_customer: ApiClient) -> None:
    response = as_customer.get("/permissions")
    assert response.status_code == 200
    listed = {p["name"]: p for p in response.json()}
    assert set(listed) == {p.name for p in permission_specs()}
    for spec in permission_specs():
        item = listed[spec.name]
        assert set(item) == {"id", "name", "group", "description"}
        assert item["group"] == spec.group
        assert item["description"] == spec.description
    assert len({p["id"] for p in listed.values()}) == len(permission_specs())


@pytest.mark.parametrize("path", ["/roles", "/permissions"])
def test_roles_and_permissions_need_a_token(anon: ApiClient, problem, path: str) -> None:
    problem(anon.get(path), 401)


def test_role_list_query_count_is_flat(as_admin: ApiClient, django_assert_max_num_queries) -> None:
    with django_assert_max_num_queries(8) as few:
        as_admin.get("/roles")
    for n in range(15):
        Group.objects.create(name=f"Extra {n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(as_admin.get("/roles").json()) >= 18
