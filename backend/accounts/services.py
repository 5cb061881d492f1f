"""Writes of the accounts area. Keyword-only functions named ``<entity>_<action>``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from backend.accounts import selectors
from backend.accounts.catalog import DEFAULT_ROLE
from backend.accounts.models import PersonalAccessToken, User, normalize_email
from backend.accounts.tokens import IssuedToken, token_issue, tokens_revoke_for_user
from backend.core import throttling
from backend.core.errors import (
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    Unauthorized,
    ValidationFailed,
)
from backend.core.jobs import enqueue_on_commit
from backend.core.permissions import has_perm, require_perm

logger = logging.getLogger(__name__)

LOGIN_SCOPE = "login-failures"
LOGIN_ADDRESS_SCOPE = "login-address"
REGISTER_SCOPE = "register"
FORGOT_PASSWORD_SCOPE = "forgot-password"


def _login_rate() -> throttling.Rate:
    return throttling.Rate(settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW)


def _validate_email(email: str) -> str:
    email = normalize_email(email)
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            detail="The email address is not valid.",
            errors=[FieldError(loc=["body", "email"], msg="Enter a valid email address.")],
        ) from exc
    return email


def _validate_password(password: str, *, user: User | None = None) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            detail="The password is too weak.",
            errors=[FieldError(loc=["body", "password"], msg=msg) for msg in exc.messages],
        ) from exc


def _ensure_email_free(email: str, *, exclude_id: int | None = None) -> None:
    taken = User.objects.filter(email=email)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise Conflict(
            detail="This email is already registered.",
            errors=[FieldError(loc=["body", "email"], msg="Email already taken.")],
        )


def _publish_user_updated(user: User) -> None:
    from realtime.publish import publish

    publish(f"user.{user.pk}", "user.updated", selectors.user_profile(user))


def _reauthorize_on_commit(user: User) -> None:
    """Rights changed: once committed, every server process re-checks the user's live
    socket subscriptions and ends those the new roles no longer allow."""
    from realtime.publish import reauthorize_user

    reauthorize_user(user.pk)


def _roles_named(names: set[str]) -> list[Group]:
    """The roles with these names; 422 naming the ones that do not exist."""
    groups = list(Group.objects.filter(name__in=names))
    if len(groups) != len(names):
        unknown = sorted(names - {g.name for g in groups})
        raise ValidationFailed(
            detail=f"Unknown roles: {', '.join(unknown)}.",
            errors=[FieldError(loc=["body", "roles"], msg="Unknown role.")],
        )
    return groups


def _create_user(*, name: str, email: str, password: str, roles: list[str]) -> User:
    email = _validate_email(email)
    _ensure_email_free(email)
    _validate_password(password, user=User(name=name, email=email))
    groups = _roles_named(set(roles))
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password, name=name)
            user.groups.set(groups)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict(detail="This email is already registered.") from exc
    return user


@dataclass(frozen=True)
class SignedIn:
    user: User
    issued: IssuedToken


def user_register(
    *, name: str, email: str, password: str, client_address: str | None = None
) -> SignedIn:
    """Self-registration with the default role; limited per client address
    (``REGISTER_RATE_LIMIT``), every attempt counted."""
    if client_address is not None:
        throttling.check_and_record(
            REGISTER_SCOPE, client_address, throttling.Rate.parse(settings.REGISTER_RATE_LIMIT)
        )
    with transaction.atomic():
        user = _create_user(name=name, email=email, password=password, roles=[DEFAULT_ROLE])
        return SignedIn(user=user, issued=token_issue(user=user, device_name="registration"))


def user_authenticate(*, email: str, password: str, client_address: str | None = None) -> User:
    """The active user with these credentials, under the login limits; the one check behind
    the API's login and the admin site's.

    Every attempt counts against the client address (``LOGIN_ADDRESS_RATE_LIMIT``). Each
    attempt for an email takes a numbered slot in that email's failure window first
    (atomically), and only the first ``LOGIN_MAX_FAILURES`` slots get their password checked:
    concurrent guesses cannot all slip in before the first failure is counted. A wrong
    password keeps its slot; the right one frees the window.
    """
    email = normalize_email(email)
    if client_address is not None:
        throttling.check_and_record(
            LOGIN_ADDRESS_SCOPE,
            client_address,
            throttling.Rate.parse(settings.LOGIN_ADDRESS_RATE_LIMIT),
            detail="Too many login attempts from this address; try again later.",
        )
    throttling.check_and_record(
        LOGIN_SCOPE, email, _login_rate(), detail="Too many failed logins; try again later."
    )
    user = User.objects.filter(email=email).first()
    if user is None:
        # Hash anyway, so the answer's timing does not tell which emails have accounts.
        User().set_password(password)
    if user is None or not user.check_password(password) or not user.is_active:
        raise Unauthorized(detail="Wrong email or password, or the account is inactive.")
    throttling.clear(LOGIN_SCOPE, email)
    return user


def user_login(
    *, email: str, password: str, device_name: str = "", client_address: str | None = None
) -> SignedIn:
    user = user_authenticate(email=email, password=password, client_address=client_address)
    return SignedIn(user=user, issued=token_issue(user=user, device_name=device_name))


def password_reset_request(*, email: str, client_address: str | None = None) -> None:
    """Queue the reset mail when the address belongs to an active user; silent otherwise.

    Limited per client address (``FORGOT_PASSWORD_RATE_LIMIT``) whatever the answer, so the
    limit itself tells nothing about which addresses exist."""
    if client_address is not None:
        throttling.check_and_record(
            FORGOT_PASSWORD_SCOPE,
            client_address,
            throttling.Rate.parse(settings.FORGOT_PASSWORD_RATE_LIMIT),
        )
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None:
        return
    enqueue_on_commit("accounts.send_password_reset_email", user_id=user.pk)


def password_reset_mail_send(*, user_id: int) -> bool:
    """Mail a reset link to an active user (False: no such active user, nothing sent).

    Sending twice mails a second, equally valid link: harmless, so the job may retry."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    token = default_token_generator.make_token(user)
    context = {
        "user": user,
        "token": token,
        "reset_url": settings.PASSWORD_RESET_URL.format(
            email=quote(user.email, safe="@"), token=quote(token, safe="")
        ),
        "valid_minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
    }
    send_mail(
        subject="Reset your Triton password",
        message=render_to_string("accounts/password_reset_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    logger.info("password reset mail sent", extra={"user_id": user_id})
    return True


def expired_tokens_purge() -> int:
    """Delete tokens that expired or were revoked more than a week ago."""
    cutoff = timezone.now() - timedelta(days=7)
    deleted, _ = PersonalAccessToken.objects.filter(
        Q(expires_at__lt=cutoff) | Q(revoked_at__lt=cutoff)
    ).delete()
    return deleted


def password_reset_complete(*, email: str, token: str, password: str) -> None:
    user = User.objects.filter(email=normalize_email(email), is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        raise ValidationFailed(
            detail="The reset token is invalid or has expired.",
            errors=[FieldError(loc=["body", "token"], msg="Invalid or expired token.")],
        )
    _validate_password(password, user=user)
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password", "updated_at"])
        tokens_revoke_for_user(user=user)


def user_create(
    *, actor: User, name: str, email: str, password: str, roles: list[str] | None = None
) -> User:
    """A new user with the given roles (the default role when ``roles`` is None).

    Handing out any role other than the default needs ``users.update`` as well, the right
    that governs roles: ``users.create`` alone must not mint administrators."""
    require_perm(actor, "users.create")
    roles = [DEFAULT_ROLE] if roles is None else list(dict.fromkeys(roles))
    if set(roles) - {DEFAULT_ROLE} and not has_perm(actor, "users.update"):
        raise PermissionDenied(detail="Assigning roles needs the users.update permission.")
    with transaction.atomic():
        return _create_user(name=name, email=email, password=password, roles=roles)


def _require_current_password(user: User, current_password: str | None) -> None:
    """One's own password or email changes only with the current password (a stolen token
    alone must not take the account over). A wrong one counts as a failed login."""
    loc: list[str | int] = ["body", "current_password"]
    if not current_password:
        raise ValidationFailed(
            detail="Changing your password or email needs your current password.",
            errors=[FieldError(loc=loc, msg="Required to change your password or email.")],
        )
    throttling.check_and_record(
        LOGIN_SCOPE, user.email, _login_rate(), detail="Too many failed logins; try again later."
    )
    if not user.check_password(current_password):
        raise ValidationFailed(
            detail="The current password is wrong.",
            errors=[FieldError(loc=loc, msg="Wrong password.")],
        )
    throttling.clear(LOGIN_SCOPE, user.email)


def user_update(
    *, actor: User, user_id: int, changes: dict[str, Any], token_id: int | None = None
) -> User:
    """Apply the fields given. Self may change name, email and password; ``users.update``
    also is_active and roles. Publishes ``user.updated`` when a visible field changed;
    deactivation revokes every token of the user. Nothing is written on refusal.

    Changing one's own password or email needs ``current_password`` and revokes every other
    token of the user (closing their sockets); ``token_id``, the token the change was made
    with, stays valid. Someone with ``users.update`` changing another user needs neither."""
    if actor.pk != user_id and not has_perm(actor, "users.update"):
        if has_perm(actor, "users.view"):
            raise PermissionDenied(detail="This needs the users.update permission.")
        raise NotFound(detail="No such user.")
    with transaction.atomic():
        # Its roles prefetched as selectors.user_list() has them: unless the roles change,
        # this instance, saved below, is the user as stored (no second read).
        user = selectors.user_list().order_by().select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound(detail="No such user.")
        before = VisibleUserState.of(user)
        current_roles = set(before.roles)
        wanted_roles = set(changes["roles"]) if "roles" in changes else current_roles
        # Sending back the representation one got (PUT) is fine; changing these is not.
        privileged = []
        if "is_active" in changes and changes["is_active"] != user.is_active:
            privileged.append("is_active")
        if wanted_roles != current_roles:
            privileged.append("roles")
        if privileged and not has_perm(actor, "users.update"):
            raise PermissionDenied(
                detail=f"Changing {', '.join(privileged)} needs the users.update permission."
            )
        own_credentials = user.pk == actor.pk and (
            changes.get("password") is not None
            or ("email" in changes and normalize_email(changes["email"]) != user.email)
        )
        if own_credentials:
            _require_current_password(user, changes.get("current_password"))
        dirty: set[str] = set()
        if "name" in changes and changes["name"] != user.name:
            user.name = changes["name"]
            dirty.add("name")
        if "email" in changes:
            email = _validate_email(changes["email"])
            if email != user.email:
                _ensure_email_free(email, exclude_id=user.pk)
                user.email = email
                dirty.add("email")
        if changes.get("password") is not None:
            _validate_password(changes["password"], user=user)
            user.set_password(changes["password"])
            dirty.add("password")
        if "is_active" in privileged:
            if user.pk == actor.pk and not changes["is_active"]:
                raise Conflict(detail="You cannot deactivate yourself.")
            user.is_active = changes["is_active"]
            dirty.add("is_active")
        groups = _roles_named(wanted_roles) if "roles" in privileged else []
        if dirty:
            user.save(update_fields=[*sorted(dirty), "updated_at"])
        if "roles" in privileged:
            user.groups.set(groups)
            if not dirty:  # roles alone changed: the user still changed
                user.save(update_fields=["updated_at"])
        if own_credentials and dirty & {"password", "email"}:
            tokens_revoke_for_user(user=user, except_token_id=token_id)
        # groups.set() drops the prefetched roles: read the user again after a change of roles.
        current = None if "roles" in privileged else user
        return _follow_up_user_change(user_id=user.pk, before=before, current=current)


def user_delete(*, actor: User, user_id: int) -> None:
    require_perm(actor, "users.delete")
    if actor.pk == user_id:
        raise Conflict(detail="You cannot delete yourself.")
    with transaction.atomic():
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise NotFound(detail="No such user.")
        tokens_revoke_for_user(user=user)
        user.delete()


def superuser_ensure(*, email: str, password: str, name: str = "") -> User:
    """Idempotent: make sure this superuser exists and holds the Admin role.

    An existing account with that email is promoted (its password is left as it is)."""
    from backend.accounts.catalog import ADMIN

    with transaction.atomic():
        user = User.objects.filter(email=normalize_email(email)).first()
        if user is None:
            user = User.objects.create_superuser(email=email, password=password, name=name)
        elif not (user.is_superuser and user.is_staff and user.is_active):
            user.is_superuser = user.is_staff = user.is_active = True
            user.save(update_fields=["is_superuser", "is_staff", "is_active", "updated_at"])
        user.groups.add(Group.objects.get(name=ADMIN))
    return user


@dataclass(frozen=True)
class VisibleUserState:
    """What ``user.updated`` shows and the socket's authorization depends on."""

    name: str
    email: str
    is_active: bool
    is_superuser: bool
    roles: frozenset[str]

    @classmethod
    def of(cls, user: User) -> VisibleUserState:
        return cls(
            name=user.name,
            email=user.email,
            is_active=user.is_active,
            is_superuser=user.is_superuser,
            roles=frozenset(group.name for group in user.groups.all()),  # uses a prefetch
        )


def _follow_up_user_change(
    *, user_id: int, before: VisibleUserState, current: User | None = None
) -> User:
    """What every change of a user entails, whoever made it: deactivation revokes the
    tokens, a change of rights re-checks live subscriptions, and any visible change publishes
    ``user.updated``. Runs inside the saving transaction; returns the user as stored now (a
    fresh instance: no cached permissions of the old roles). ``current``: an instance that
    already is that (read with ``selectors.user_list()``'s prefetch, saved, roles unchanged)."""
    fresh = current or selectors.user_list().get(pk=user_id)  # saved in this transaction
    after = VisibleUserState.of(fresh)
    if after == before:
        return fresh
    if before.is_active and not after.is_active:
        tokens_revoke_for_user(user=fresh)
    if (before.roles, before.is_superuser) != (after.roles, after.is_superuser):
        _reauthorize_on_commit(fresh)
    _publish_user_updated(fresh)
    return fresh


def user_saved_elsewhere(*, user_id: int, before: VisibleUserState | None) -> None:
    """Follow-up for a user changed outside ``user_update`` (the admin site): the same
    event, revocation and re-authorization as a change through the API. Call it inside
    the transaction that saved the user and its groups; ``before`` is None for a new user."""
    if before is not None:
        _follow_up_user_change(user_id=user_id, before=before)


def role_permissions_changed(*, group: Group) -> None:
    """A role's rights changed: every member's permission list changed with it."""
    for member in selectors.user_list().filter(groups=group):
        _reauthorize_on_commit(member)
        _publish_user_updated(member)
