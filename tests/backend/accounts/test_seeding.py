import pytest
from django.contrib.auth.models import Group

from backend.accounts import selectors
from backend.accounts.catalog import default_roles, permission_specs
from backend.accounts.seeding import seed_roles_and_permissions
from backend.core.permissions import catalog_name


@pytest.mark.django_db
def test_default_roles_exist_with_their_permissions() -> None:
    for role_name, (description, granted) in default_roles().items():
        group = Group.objects.get(name=role_name)
        assert group.role.description == description
        names = {catalog_name(p) for p in group.permissions.all()}
        assert set(granted) <= names


@pytest.mark.django_db
def test_admin_holds_every_catalog_permission_and_seeding_is_idempotent() -> None:
    seed_roles_and_permissions()
    seed_roles_and_permissions()
    assert Group.objects.filter(name="Admin").count() == 1
    assert selectors.catalog_permissions().count() == len(permission_specs())
    admin = Group.objects.get(name="Admin")
    assert admin.permissions.count() == len(permission_specs())
