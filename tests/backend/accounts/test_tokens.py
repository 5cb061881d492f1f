"""Personal access tokens: issue, authenticate, revoke, purge."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from backend.accounts.models import PersonalAccessToken
from backend.accounts.tokens import (
    token_authenticate,
    token_issue,
    token_revoke,
    tokens_revoke_for_user,
)
from tests.factories import UserFactory
from workers.accounts import purge_expired_tokens

pytestmark = pytest.mark.django_db


def test_issue_stores_only_a_hash_of_the_secret(settings) -> None:
    settings.TOKEN_TTL = timedelta(days=7)
    user = UserFactory()
    issued = token_issue(user=user, device_name="laptop " * 100)
    token_id, sep, secret = issued.plain_text.partition("|")
    assert sep == "|" and int(token_id) == issued.token.pk
    assert len(secret) >= 43  # 256 bits, url-safe base64
    row = PersonalAccessToken.objects.get(pk=issued.token.pk)
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in row.token_hash
    assert len(row.name) == 255
    assert timedelta(days=7) - (row.expires_at - timezone.now()) < timedelta(seconds=30)
    assert token_issue(user=user).plain_text != issued.plain_text


def test_authenticate_returns_the_live_token_with_its_user() -> None:
    user = UserFactory()
    issued = token_issue(user=user)
    token = token_authenticate(issued.plain_text)
    assert token is not None and token.pk == issued.token.pk
    assert token.user == user


@pytest.mark.parametrize(
    "text",
    [
        "",
        "|",
        "1|",
        "|abc",
        "abc",
        "a|b",
        "-1|abc",
        "²|abc",
        "\u0661|abc",
        " 1|abc",
        "1 |abc",
        "99999999999999999999|abc",
        "0|abc",
        "1|" + "x" * 500,
    ],
)
def test_authenticate_refuses_malformed_text(text: str) -> None:
    token_issue(user=UserFactory())
    assert token_authenticate(text) is None


def test_authenticate_refuses_a_wrong_secret_expired_revoked_and_inactive() -> None:
    user = UserFactory()
    issued = token_issue(user=user)
    token_id, _, secret = issued.plain_text.partition("|")
    assert token_authenticate(f"{token_id}|{secret}x") is None
    other = token_issue(user=UserFactory())
    assert token_authenticate(f"{other.token.pk}|{secret}") is None

    PersonalAccessToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert token_authenticate(issued.plain_text) is None

    revoked = token_issue(user=user)
    token_revoke(token=revoked.token)
    assert token_authenticate(revoked.plain_text) is None

    live = token_issue(user=user)
    user.is_active = False
    user.save()
    assert token_authenticate(live.plain_text) is None


def test_last_used_at_is_written_at_most_once_per_resolution(
    settings, django_assert_num_queries
) -> None:
    settings.TOKEN_LAST_USED_RESOLUTION = timedelta(seconds=60)
    issued = token_issue(user=UserFactory())
    with django_assert_num_queries(2):  # read + the one write
        first = token_authenticate(issued.plain_text)
    assert first is not None and first.last_used_at is not None
    with django_assert_num_queries(1):  # read only
        token_authenticate(issued.plain_text)
    stale = timezone.now() - timedelta(minutes=5)
    PersonalAccessToken.objects.filter(pk=issued.token.pk).update(last_used_at=stale)
    token_authenticate(issued.plain_text)
    assert PersonalAccessToken.objects.get(pk=issued.token.pk).last_used_at > stale


def test_revoke_keeps_the_first_revocation_time() -> None:
    issued = token_issue(user=UserFactory())
    token_revoke(token=issued.token)
    first = PersonalAccessToken.objects.get(pk=issued.token.pk).revoked_at
    assert first is not None
    token_revoke(token=issued.token)
    assert PersonalAccessToken.objects.get(pk=issued.token.pk).revoked_at == first


def test_revoke_for_user_touches_only_that_users_live_tokens() -> None:
    user, bystander = UserFactory(), UserFactory()
    mine = [token_issue(user=user) for _ in range(3)]
    token_revoke(token=mine[0].token)
    theirs = token_issue(user=bystander)
    assert tokens_revoke_for_user(user=user) == 2
    assert all(token_authenticate(t.plain_text) is None for t in mine)
    assert token_authenticate(theirs.plain_text) is not None
    assert tokens_revoke_for_user(user=user) == 0


def test_purge_deletes_only_long_dead_tokens() -> None:
    user = UserFactory()
    now = timezone.now()
    live = token_issue(user=user)
    recently_revoked = token_issue(user=user)
    PersonalAccessToken.objects.filter(pk=recently_revoked.token.pk).update(revoked_at=now)
    long_expired = token_issue(user=user)
    PersonalAccessToken.objects.filter(pk=long_expired.token.pk).update(
        expires_at=now - timedelta(days=8)
    )
    long_revoked = token_issue(user=user)
    PersonalAccessToken.objects.filter(pk=long_revoked.token.pk).update(
        revoked_at=now - timedelta(days=8)
    )
    assert purge_expired_tokens() == 2
    left = set(PersonalAccessToken.objects.values_list("pk", flat=True))
    assert left == {live.token.pk, recently_revoked.token.pk}
    assert purge_expired_tokens() == 0
