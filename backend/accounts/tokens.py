"""Personal access tokens: issue, authenticate, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.accounts.models import PersonalAccessToken, User
from backend.core import lean


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


# --- the lean check ---------------------------------------------------------------------------
# Authentication runs on every request and every socket, and the ORM spent ~20x longer
# building the token query than the database spent answering it. The query is written once
# here (the same conditions as PersonalAccessToken.objects.live(), which tests hold equal);
# rows become the token and its user exactly as the ORM returns them (backend.core.lean).


@cache
def _live_token_sql(vendor: str) -> str:
    token, user = partial(lean.column_name, PersonalAccessToken), partial(lean.column_name, User)
    token_pk, user_pk = token(PersonalAccessToken._meta.pk.name), user(User._meta.pk.name)
    columns = lean.select_columns(PersonalAccessToken, "t") + lean.select_columns(User, "u")
    # Names come from the models' metadata; values travel as parameters.
    return (
        f"SELECT {', '.join(columns)} FROM {lean.table_name(PersonalAccessToken)} t "  # noqa: S608
        f"INNER JOIN {lean.table_name(User)} u ON u.{user_pk} = t.{token('user')} "
        f"WHERE t.{token_pk} = %s AND t.{token('revoked_at')} IS NULL "
        f"AND t.{token('expires_at')} > %s AND u.{user('is_active')} = %s"
    )


def _live_token_with_user(token_id: int) -> PersonalAccessToken | None:
    db = lean.database()
    now = timezone.now()
    with db.cursor() as cursor:
        cursor.execute(
            _live_token_sql(db.vendor), [token_id, db.ops.adapt_datetimefield_value(now), True]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(PersonalAccessToken._meta.concrete_fields)
    token = lean.from_row(PersonalAccessToken, row[:split])
    token.user = lean.from_row(User, row[split:])
    return token


# Sockets mark their tokens used in batches: a reconnect storm of thousands of fresh tokens
# would otherwise write one row per socket, one after the other, on the connect path.
_pending_marks: dict[int, datetime] = {}
_pending_lock = threading.Lock()
_last_flush = [time.monotonic()]
LAST_USED_FLUSH_SECONDS = 1.0


def tokens_mark_used_flush() -> int:
    """Write the deferred ``last_used_at`` marks (one UPDATE per distinct time); how many."""
    with _pending_lock:
        marks = dict(_pending_marks)
        _pending_marks.clear()
        _last_flush[0] = time.monotonic()
    if not marks:
        return 0
    latest = max(marks.values())
    PersonalAccessToken.objects.filter(pk__in=list(marks)).update(last_used_at=latest)
    return len(marks)


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


def token_authenticate(
    plain_text: str, *, defer_last_used: bool = False
) -> PersonalAccessToken | None:
    """The live token behind ``<id>|<secret>``, with its user; None for anything else.

    ``defer_last_used`` (the socket path): ``last_used_at`` is written within about a second,
    batched with other tokens', instead of in this call."""
    parsed = token_parse(plain_text)
    if parsed is None:
        return None
    token = _live_token_with_user(parsed.token_id)
    if token is None or not hmac.compare_digest(token.token_hash, _hash_secret(parsed.secret)):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > settings.TOKEN_LAST_USED_RESOLUTION:
        token.last_used_at = now
        if defer_last_used:
            with _pending_lock:
                _pending_marks[token.pk] = now
                due = time.monotonic() - _last_flush[0] >= LAST_USED_FLUSH_SECONDS
            if due:
                tokens_mark_used_flush()
        else:
            # A conditional update: at most one write per token per resolution period.
            PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
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


def tokens_revoke_for_user(*, user: User, except_token_id: int | None = None) -> int:
    """Revoke every live token of the user (password reset, deactivation), or every one but
    ``except_token_id`` (the one a change of one's own credentials was made with)."""
    with transaction.atomic():
        live = PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True)
        if except_token_id is not None:
            live = live.exclude(pk=except_token_id)
        token_ids = list(live.values_list("pk", flat=True))
        live.filter(pk__in=token_ids).update(revoked_at=timezone.now())
        _close_sockets_on_commit(token_ids)
    return len(token_ids)
