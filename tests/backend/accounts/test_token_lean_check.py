"""The lean token check agrees with the ORM's definition of a live token, and the socket path's
deferred last-used marks reach the database in one batch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from backend.accounts import tokens
from backend.accounts.models import PersonalAccessToken
from backend.accounts.tokens import token_authenticate, token_issue, tokens_mark_used_flush
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _revoke(token: PersonalAccessToken) -> None:
    PersonalAccessToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())


def _expire(token: PersonalAccessToken) -> None:
    PersonalAccessToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def _deactivate(token: PersonalAccessToken) -> None:
    token.user.is_active = False
    token.user.save()


def _nothing(token: PersonalAccessToken) -> None:
    return None


@pytest.mark.parametrize("change", [_nothing, _revoke, _expire, _deactivate])
def test_the_lean_check_accepts_exactly_what_live_accepts(change) -> None:
    issued = token_issue(user=UserFactory())
    change(issued.token)
    live = PersonalAccessToken.objects.live().filter(pk=issued.token.pk).exists()
    assert (token_authenticate(issued.plain_text) is not None) is live


def test_the_lean_check_returns_what_the_orm_would() -> None:
    issued = token_issue(user=UserFactory(name="Zoë"))
    token = token_authenticate(issued.plain_text)
    assert token is not None
    from_orm = PersonalAccessToken.objects.select_related("user").get(pk=issued.token.pk)
    assert model_to_dict(token) == model_to_dict(from_orm)
    assert model_to_dict(token.user) == model_to_dict(from_orm.user)
    # Timestamps come back timezone-aware, as the ORM gives them.
    assert token.expires_at == from_orm.expires_at and token.expires_at.tzinfo is not None
    assert token.user.created_at == from_orm.user.created_at
    assert token.user.is_active is True


def test_socket_path_defers_last_used_and_flushes_in_one_batch(
    django_assert_num_queries, monkeypatch
) -> None:
    monkeypatch.setattr(tokens, "LAST_USED_FLUSH_SECONDS", 3600.0)
    tokens_mark_used_flush()
    user = UserFactory()
    issued = [token_issue(user=user) for _ in range(3)]
    with django_assert_num_queries(3):  # one read each, no write
        for item in issued:
            assert token_authenticate(item.plain_text, defer_last_used=True) is not None
    assert not PersonalAccessToken.objects.filter(last_used_at__isnull=False).exists()
    with django_assert_num_queries(1):
        assert tokens_mark_used_flush() == 3
    assert PersonalAccessToken.objects.filter(last_used_at__isnull=False).count() == 3
    assert tokens_mark_used_flush() == 0


def test_a_due_flush_happens_on_the_next_check(monkeypatch) -> None:
    monkeypatch.setattr(tokens, "LAST_USED_FLUSH_SECONDS", 0.0)
    issued = token_issue(user=UserFactory())
    assert token_authenticate(issued.plain_text, defer_last_used=True) is not None
    assert PersonalAccessToken.objects.get(pk=issued.token.pk).last_used_at is not None
