"""Personal access tokens: issue, authenticate, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
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


# --- the lean check ---------------------------------------------------------------------------
# Authentication runs on every request and every socket, and the ORM spent ~20x longer
# building the token query than the database spent answering it. The query is written once
# here (the same conditions as PersonalAccessToken.objects.live(), which tests hold equal) and
# only its parameters change per call; rows become model instances through the fields' own
# database converters, so the token and its user are exactly what the ORM would return.


@cache
def _live_token_sql(vendor: str) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    token_meta, user_meta = PersonalAccessToken._meta, User._meta
    columns = [f"t.{quote(f.column)}" for f in token_meta.concrete_fields]
    columns += [f"u.{quote(f.column)}" for f in user_meta.concrete_fields]
    # Names come from the models' metadata; values travel as parameters.
    return (
        f"SELECT {', '.join(columns)} FROM {quote(token_meta.db_table)} t "  # noqa: S608
        f"INNER JOIN {quote(user_meta.db_table)} u "
        f"ON u.{quote(user_meta.pk.column)} = t.{quote(token_meta.get_field('user').column)} "
        f"WHERE t.{quote(token_meta.pk.column)} = %s "
        f"AND t.{quote(token_meta.get_field('revoked_at').column)} IS NULL "
        f"AND t.{quote(token_meta.get_field('expires_at').column)} > %s "
        f"AND u.{quote(user_meta.get_field('is_active').column)} = %s"
    )


Converter = Callable[[Any, Any, Any], Any]


@cache
def _converters(model: type[models.Model], vendor: str) -> list[tuple[Any, list[Converter]]]:
    """Per concrete field, the converters the ORM applies to a value read from the database."""
    db = connections[DEFAULT_DB_ALIAS]
    result = []
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        result.append((column, db.ops.get_db_converters(column) + column.get_db_converters(db)))
    return result


def _from_row(db: Any, model: type[models.Model], values: tuple[Any, ...]) -> Any:
    converted = []
    for value, (column, converters) in zip(values, _converters(model, db.vendor), strict=True):
        for converter in converters:
            value = converter(value, column, db)
        converted.append(value)
    return model.from_db(db.alias, [f.attname for f in model._meta.concrete_fields], converted)


def _live_token_with_user(token_id: int) -> PersonalAccessToken | None:
    db = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    with db.cursor() as cursor:
        cursor.execute(
            _live_token_sql(db.vendor), [token_id, db.ops.adapt_datetimefield_value(now), True]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(PersonalAccessToken._meta.concrete_fields)
    token = _from_row(db, PersonalAccessToken, row[:split])
    token.user = _from_row(db, User, row[split:])
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


def tokens_revoke_for_user(*, user: User) -> int:
    """Revoke every live token of the user (password reset, deactivation)."""
    with transaction.atomic():
        live = PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True)
        token_ids = list(live.values_list("pk", flat=True))
        live.filter(pk__in=token_ids).update(revoked_at=timezone.now())
        _close_sockets_on_commit(token_ids)
    return len(token_ids)
