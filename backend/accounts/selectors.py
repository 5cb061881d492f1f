"""Reads of the accounts area."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Prefetch, Q, QuerySet

from backend.accounts.models import User
from backend.core import lean
from backend.core.errors import NotFound
from backend.core.permissions import (
    catalog_permission_rows,
    has_perm,
    permission_names,
    require_perm,
)

if TYPE_CHECKING:
    from django.db.models.options import Options


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


def user_get_fresh(user_id: int) -> User | None:
    """The user row as it is now, for hot paths (each socket subscribe re-reads it)."""
    return lean.get_by_pk(User, user_id)


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


@cache
def _roles_and_permissions_sql(vendor: str) -> str:
    """One query for what ``user_role_names`` and ``user_permission_names`` read in three
    (the ORM spent most of ``/auth/me`` building those)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    user_groups = User.groups.through._meta
    user_perms = User.user_permissions.through._meta
    group_perms = Group.permissions.through._meta
    group, permission, content_type = Group._meta, Permission._meta, ContentType._meta

    def column(meta: object, name: str) -> str:
        return quote(meta.get_field(name).column)  # type: ignore[attr-defined]

    def pk_column(meta: Options[Any]) -> str:
        assert meta.pk is not None and meta.pk.column is not None  # concrete models
        return quote(meta.pk.column)

    ug_user, ug_group = column(user_groups, "user"), column(user_groups, "group")
    permission_from = (
        f"FROM {quote(permission.db_table)} p INNER JOIN {quote(content_type.db_table)} ct "
        f"ON ct.{pk_column(content_type)} = p.{column(permission, 'content_type')} "
    )
    permission_columns = (
        f"SELECT 'p', ct.{column(content_type, 'app_label')}, p.{column(permission, 'codename')} "
    )
    return (
        f"SELECT 'r', g.{column(group, 'name')}, '' FROM {quote(group.db_table)} g "  # noqa: S608
        f"INNER JOIN {quote(user_groups.db_table)} ug "
        f"ON ug.{ug_group} = g.{pk_column(group)} "
        f"WHERE ug.{ug_user} = %s "
        f"UNION ALL {permission_columns}{permission_from}"
        f"INNER JOIN {quote(user_perms.db_table)} up "
        f"ON up.{column(user_perms, 'permission')} = p.{pk_column(permission)} "
        f"WHERE up.{column(user_perms, 'user')} = %s "
        f"UNION ALL {permission_columns}{permission_from}"
        f"INNER JOIN {quote(group_perms.db_table)} gp "
        f"ON gp.{column(group_perms, 'permission')} = p.{pk_column(permission)} "
        f"INNER JOIN {quote(user_groups.db_table)} ug2 "
        f"ON ug2.{ug_group} = gp.{column(group_perms, 'group')} "
        f"WHERE ug2.{ug_user} = %s"
    )


def user_roles_and_permissions(user: User) -> tuple[list[str], list[str]]:
    """``(user_role_names(user), user_permission_names(user))`` in one query: the rows
    ``ModelBackend.get_all_permissions`` reads (the user's and their roles' permissions)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(_roles_and_permissions_sql(cursor.db.vendor), [user.pk, user.pk, user.pk])
        rows = cursor.fetchall()
    roles = sorted({name for kind, name, _ in rows if kind == "r"})
    held = {f"{app_label}.{codename}" for kind, app_label, codename in rows if kind == "p"}
    return roles, permission_names(user, held=held)


def user_profile(user: User) -> dict:
    """The user as ``/auth/me`` and the ``user.updated`` event show it."""
    roles, permissions = user_roles_and_permissions(user)
    return {
        "id": user.pk,
        "name": user.name,
        "email": user.email,
        "is_active": user.is_active,
        "roles": roles,
        "permissions": permissions,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


def token_ids_no_longer_valid(token_ids: list[int]) -> set[int]:
    """Of these tokens, those that no longer authenticate (revoked, expired, deleted, or of
    an inactive user)."""
    from backend.accounts.models import PersonalAccessToken

    live = PersonalAccessToken.objects.live().filter(pk__in=token_ids)
    return set(token_ids) - set(live.values_list("pk", flat=True))
