"""backend.core.lean gives what the ORM gives, in one query."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from backend.accounts.models import User
from backend.accounts.selectors import user_get_fresh
from backend.core.lean import get_by_pk
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_get_by_pk_equals_the_orm(django_assert_num_queries) -> None:
    user = UserFactory(name="Zoë", roles=[])
    user.is_superuser = True
    user.save()
    orm = User.objects.get(pk=user.pk)
    with django_assert_num_queries(1):
        lean = get_by_pk(User, user.pk)
    assert lean is not None and lean.pk == orm.pk
    assert model_to_dict(lean) == model_to_dict(orm)
    assert lean.created_at == orm.created_at and lean.created_at.tzinfo is not None
    assert lean.is_superuser is True and lean.is_active is True
    assert lean._state.adding is False and lean._state.db == "default"


def test_missing_rows_are_none() -> None:
    assert get_by_pk(User, 987654321) is None
    assert user_get_fresh(987654321) is None
