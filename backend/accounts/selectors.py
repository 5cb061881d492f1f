"""Reads of the accounts area."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Prefetch, Q, QuerySet

from backend.accounts.models import User
from backend.core.errors import NotFound
from backend.core.permissions import (
    catalog_permission_rows,
    has_perm,
    permission_names,
    require_perm,
)


def catalog_permissions() -> QuerySet[Permission]:
    """The rows of every declared permission (``catalog_name`` gives their API name)."""
    return catalog_permission_rows().select_related("content_type").order_by("codename")


def user_list(*, search: str | None = None) -> QuerySet[User]:
    users = User.objects.prefetch_related(
        Prefetch("groups", queryset=Group.objects.order_by("name"))
    ).order_by("id")
    if search:
        users = users.filter(Q(name__icontains=search) | Q(email__icontains=search))
    return users


def user_get(*, user_id: int) -> User | None:
    return user_list().filter(pk=user_id).first()


def user_list_visible(*, actor: User, search: str | None = None) -> QuerySet[User]:
    """Every user matching ``search``, for holders of ``users.view``; 403 for anyone else."""
    require_perm(actor, "users.view")
    return user_list(search=search)


def user_get_visible(*, actor: User, user_id: int) -> User:
    """Self, or anyone for holders of ``users.view``. Anything else is 404, exactly like a
    user that does not exist, so ids of other users reveal nothing."""
    if actor.pk != user_id and not has_perm(actor, "users.view"):
        raise NotFound(detail="No such user.")
    user = user_get(user_id=user_id)
    if user is None:
        raise NotFound(detail="No such user.")
    return user


def role_list() -> QuerySet[Group]:
    return (
        Group.objects.select_related("role")
        .prefetch_related(Prefetch("permissions", queryset=catalog_permissions()))
        .order_by("id")
    )


def user_role_names(user: User) -> list[str]:
    return sorted(group.name for group in user.groups.all())


def user_permission_names(user: User) -> list[str]:
    """The flat list a front end's PermissionGuard needs (every right for a superuser)."""
    return permission_names(user)


def user_profile(user: User) -> dict:
    """The user as ``/auth/me`` and the ``user.updated`` event show it."""
    return {
        "id": user.pk,
        "name": user.name,
        "email": user.email,
        "is_active": user.is_active,
        "roles": user_role_names(user),
        "permissions": user_permission_names(user),
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


def token_ids_no_longer_valid(token_ids: list[int]) -> set[int]:
    """Of these tokens, those that no longer authenticate (revoked, expired, deleted, or of
    an inactive user)."""
    from backend.accounts.models import PersonalAccessToken

    live = PersonalAccessToken.objects.live().filter(pk__in=token_ids)
    return set(token_ids) - set(live.values_list("pk", flat=True))
