"""``user_roles_and_permissions`` (one query, the profile's hot path) answers exactly what the
ORM-based ``user_role_names`` and ``user_permission_names`` answer."""

from __future__ import annotations

import pytest

from backend.accounts.catalog import ADMIN, CUSTOMER, EDITOR
from backend.accounts.models import User
from backend.accounts.selectors import (
    user_permission_names,
    user_profile,
    user_role_names,
    user_roles_and_permissions,
)
from backend.core.permissions import permission_rows
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no permission caches


def _users() -> list[User]:
    direct = UserFactory(roles=[])
    direct.user_permissions.add(*permission_rows(["users.view"]))
    inactive = UserFactory(roles=[EDITOR])
    inactive.is_active = False
    inactive.save()
    superuser = UserFactory(roles=[])
    superuser.is_superuser = True
    superuser.save()
    return [
        UserFactory(roles=[]),
        UserFactory(roles=[CUSTOMER]),
        UserFactory(roles=[CUSTOMER, EDITOR]),
        UserFactory(roles=[ADMIN]),
        direct,
        inactive,
        superuser,
    ]


def test_one_query_answers_what_the_orm_answers(django_assert_num_queries) -> None:
    for user in _users():
        expected = (user_role_names(_fresh(user)), user_permission_names(_fresh(user)))
        fresh = _fresh(user)
        with django_assert_num_queries(1):
            assert user_roles_and_permissions(fresh) == expected, user.email


def test_the_profile_uses_it(django_assert_num_queries) -> None:
    user = _fresh(UserFactory(roles=[CUSTOMER, EDITOR]))
    with django_assert_num_queries(1):
        profile = user_profile(user)
    assert profile["roles"] == [CUSTOMER, EDITOR]
    assert "posts.manage" in profile["permissions"]
