"""Personal access tokens: issue, authenticate, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.accounts.models import PersonalAccessToken, User


@dataclass(frozen=True)
class IssuedToken:
    token: PersonalAccessToken
    plain_text: str


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_issue(*, user: User, device_name: str = "") -> IssuedToken:
    secret = secrets.token_urlsafe(32)
    token = PersonalAccessToken.objects.create(
        user=user,
        name=device_name[:255],
        token_hash=_hash_secret(secret),
        expires_at=timezone.now() + settings.TOKEN_TTL,
    )
    return IssuedToken(token=token, plain_text=f"{token.pk}|{secret}")


@dataclass(frozen=True)
class ParsedToken:
    token_id: int
    secret: str


def token_parse(plain_text: object) -> ParsedToken | None:
    """``<id>|<secret>`` split and checked for shape; None for anything that cannot be a
    token. The one parser for the REST bearer and the socket's ``auth`` frame."""
    if not isinstance(plain_text, str):
        return None
    token_id, sep, secret = plain_text.partition("|")
    # isascii(): "²".isdigit() is true, but int("²") raises.
    if not sep or not secret or not (token_id.isascii() and token_id.isdigit()):
        return None
    if len(token_id) > 18 or len(secret) > 128:
        return None
    return ParsedToken(token_id=int(token_id), secret=secret)


def token_authenticate(plain_text: str) -> PersonalAccessToken | None:
    """The live token behind ``<id>|<secret>``, with its user; None for anything else."""
    parsed = token_parse(plain_text)
    if parsed is None:
        return None
    token = (
        PersonalAccessToken.objects.live().select_related("user").filter(pk=parsed.token_id).first()
    )
    if token is None or not hmac.compare_digest(token.token_hash, _hash_secret(parsed.secret)):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > settings.TOKEN_LAST_USED_RESOLUTION:
        # A conditional update: at most one write per token per resolution period.
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _close_sockets_on_commit(token_ids: list[int]) -> None:
    if token_ids:
        from realtime.publish import disconnect_tokens

        disconnect_tokens(token_ids)


def token_revoke(*, token: PersonalAccessToken) -> None:
    with transaction.atomic():
        PersonalAccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        _close_sockets_on_commit([token.pk])


def tokens_revoke_for_user(*, user: User) -> int:
    """Revoke every live token of the user (password reset, deactivation)."""
    with transaction.atomic():
        live = PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True)
        token_ids = list(live.values_list("pk", flat=True))
        live.filter(pk__in=token_ids).update(revoked_at=timezone.now())
        _close_sockets_on_commit(token_ids)
    return len(token_ids)
