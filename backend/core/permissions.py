"""One permission rule for every area: role-level rights, "any" rights and object rights.

Each domain app declares ``PERMISSIONS: tuple[PermissionSpec, ...]`` in its
``permissions.py``; they are collected when Django starts (``autodiscover``). A permission
is named ``<area>.<action>`` (``orders.view_any``) everywhere in code and in the API; its
Django row lives on the content type of ``spec.model`` under a dot-free codename, so
django-guardian can hold the same right on single objects of that model.

The rule, in ``has_perm``: an active user holds ``name`` when a role (or a direct grant)
gives it globally, when one of its ``implied_by`` rights is held globally, or, for an
object, when guardian holds ``name`` on that object for the user or one of their roles.
A superuser holds everything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeGuard

from django.apps import apps
from django.contrib.auth.models import Permission, PermissionsMixin
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import CharField, Exists, Model, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from django.utils.module_loading import module_has_submodule

from backend.core.errors import NotFound, PermissionDenied

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    AnyUser = AbstractBaseUser | AnonymousUser | None


@dataclass(frozen=True)
class PermissionSpec:
    """A right of the catalog.

    ``model`` ("app_label.Model") is where the permission row lives, so the right can be
    granted on one object of that model. ``roles`` are the default roles that hold it
    globally (Admin holds everything anyway). ``implied_by`` are global rights that imply
    this one on every object (the "any" right: ``orders.view_any`` implies ``orders.view``).
    """

    name: str
    description: str
    model: str
    roles: tuple[str, ...] = ()
    implied_by: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        area, dot, action = self.name.partition(".")
        if not (area and dot and action) or "." in action:
            raise ValueError(f"permission names look like '<area>.<action>', got {self.name!r}")
        if isinstance(self.roles, str) or isinstance(self.implied_by, str):
            raise TypeError(f"{self.name}: roles and implied_by are tuples of names")

    @property
    def group(self) -> str:
        """The area, shown as ``group`` in the API."""
        return self.name.split(".", 1)[0]

    @property
    def action(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def codename(self) -> str:
        """Django/guardian codename: dots would clash with ``app_label.codename``."""
        return self.name.replace(".", "_")

    @property
    def app_label(self) -> str:
        return self.model.split(".", 1)[0]

    @property
    def perm(self) -> str:
        """The ``app_label.codename`` string Django's and guardian's backends understand."""
        return f"{self.app_label}.{self.codename}"

    def model_class(self) -> type[Model]:
        return apps.get_model(self.model)


class PermissionRegistry:
    """Every declared permission, by catalog name; filled once by ``autodiscover``."""

    def __init__(self) -> None:
        self._specs: dict[str, PermissionSpec] = {}
        self._discovered = False
        # First requests arrive on several threads at once: one discovers, the others wait.
        self._discovery_lock = threading.Lock()

    def register(self, spec: PermissionSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"permission {spec.name!r} is declared twice")
        clash = next((s for s in self._specs.values() if s.codename == spec.codename), None)
        if clash is not None:
            raise ValueError(f"permissions {clash.name!r} and {spec.name!r} share a codename")
        self._specs[spec.name] = spec
        self.__dict__.pop("_by_perm", None)

    def unregister(self, name: str) -> None:
        """For tests that declare a temporary permission."""
        del self._specs[name]
        self.__dict__.pop("_by_perm", None)

    def autodiscover(self) -> None:
        """Import ``<app>.permissions`` of every installed app and register its PERMISSIONS."""
        if self._discovered:
            return
        with self._discovery_lock:
            if not self._discovered:
                self._discover()

    def _discover(self) -> None:
        before = dict(self._specs)
        try:
            for app_config in apps.get_app_configs():
                # Only Triton's own apps: a third-party ``permissions`` module means something
                # else.
                if not app_config.name.startswith("backend.") or not module_has_submodule(
                    app_config.module, "permissions"
                ):
                    continue
                module = import_module(f"{app_config.name}.permissions")
                for spec in getattr(module, "PERMISSIONS", ()):
                    self.register(spec)
            self.validate()
        except Exception:
            self._specs = before  # the next call reports the same mistake, not "declared twice"
            self.__dict__.pop("_by_perm", None)
            raise
        self._discovered = True

    def validate(self) -> None:
        for spec in self._specs.values():
            spec.model_class()  # LookupError for a model that does not exist
            unknown = [name for name in spec.implied_by if name not in self._specs]
            if unknown:
                raise ValueError(f"{spec.name} is implied by undeclared {unknown}")

    def get(self, name: str) -> PermissionSpec:
        self.autodiscover()
        try:
            return self._specs[name]
        except KeyError:
            raise ValueError(f"unknown permission {name!r}") from None

    def all(self) -> list[PermissionSpec]:
        self.autodiscover()
        return sorted(self._specs.values(), key=lambda spec: spec.name)

    def names(self) -> frozenset[str]:
        self.autodiscover()
        return frozenset(self._specs)

    @cached_property
    def _by_perm(self) -> dict[str, PermissionSpec]:
        return {spec.perm: spec for spec in self._specs.values()}

    def by_perm(self, perm: str) -> PermissionSpec | None:
        """The spec of an ``app_label.codename`` string (None: not a catalog permission)."""
        self.autodiscover()
        return self._by_perm.get(perm)


registry = PermissionRegistry()


# --- the rule ---------------------------------------------------------------------------------
def _is_active_user(user: AnyUser) -> TypeGuard[PermissionsMixin]:
    # Users that hold rights carry Django's permission fields (PermissionsMixin); anonymous
    # users do not, so the check also tells the type checker what ``user`` is.
    return isinstance(user, PermissionsMixin) and user.is_authenticated and user.is_active


def _check_object_model(spec: PermissionSpec, obj: Model) -> None:
    if obj._meta.concrete_model is not spec.model_class()._meta.concrete_model:
        raise ValueError(
            f"{spec.name} is granted on {spec.model} objects, not on {obj._meta.label}"
        )


@cache
def _global_permissions_sql(alias: str) -> tuple[str, int]:
    """The UNION of a user's own and their roles' permissions as ``app_label, codename``
    rows, compiled once per database: building the queryset cost far more than running it.
    Returns the SQL and how many times the user id is passed."""
    probe = -1
    columns = ("content_type__app_label", "codename")
    direct = Permission.objects.filter(user=probe).values_list(*columns).order_by()
    via_roles = Permission.objects.filter(group__user=probe).values_list(*columns).order_by()
    sql, params = direct.union(via_roles).query.get_compiler(using=alias).as_sql()
    if list(params) != [probe] * len(params):  # the user id is the only parameter
        raise AssertionError(f"unexpected parameters {params!r}")
    return sql, len(params)


def _load_global_permissions(user: PermissionsMixin) -> None:
    """Fill Django's ModelBackend cache of the user's global rights (``_perm_cache``: their
    own and their roles' permissions) with one query instead of the backend's two."""
    if hasattr(user, "_perm_cache") or user.is_superuser:
        return
    alias = router.db_for_read(Permission) or DEFAULT_DB_ALIAS
    sql, count = _global_permissions_sql(alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [user.pk] * count)
        held = {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}
    user._perm_cache = held  # type: ignore[attr-defined]


def _holds_globally(user: PermissionsMixin, spec: PermissionSpec) -> bool:
    # Cached on the user instance (Django's own cache): one query per request.
    _load_global_permissions(user)
    held = user.get_all_permissions()
    return any(registry.get(name).perm in held for name in (spec.name, *spec.implied_by))


def has_perm(user: AnyUser, name: str, obj: Model | None = None) -> bool:
    """The one rule (see the module docstring)."""
    spec = registry.get(name)
    if obj is not None:
        _check_object_model(spec, obj)
    if not _is_active_user(user):
        return False
    if user.is_superuser:
        return True
    if _holds_globally(user, spec):
        return True
    # Django's ModelBackend answers False for objects; guardian's backend answers per object.
    return obj is not None and user.has_perm(spec.perm, obj)


def require_perm(user: AnyUser, name: str, obj: Model | None = None, *, hide: bool = False) -> None:
    """403 without the right; 404 with ``hide=True`` (what one may not see looks missing)."""
    if has_perm(user, name, obj):
        return
    if hide:
        raise NotFound(detail="Not found.")
    raise PermissionDenied(detail=f"This needs the {name} permission.")


def permission_rows(names: Iterable[str]) -> QuerySet[Permission]:
    """The Django rows of these declared permissions (e.g. to give a role rights)."""
    condition = Q(pk__in=[])
    for name in names:
        spec = registry.get(name)
        model = spec.model_class()
        condition |= Q(
            content_type__app_label=model._meta.app_label,
            content_type__model=model._meta.model_name,
            codename=spec.codename,
        )
    return Permission.objects.filter(condition)


def filter_by_perm(user: AnyUser, queryset: QuerySet[Any], name: str) -> QuerySet[Any]:
    """Every row when ``user`` holds ``name`` (or an ``implied_by``) globally, else the rows
    they hold ``name`` on per object. One SQL query: the global check and guardian's
    object-permission tables are EXISTS subqueries of the returned queryset."""
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    spec = registry.get(name)
    model = spec.model_class()
    if queryset.model._meta.concrete_model is not model._meta.concrete_model:
        raise ValueError(f"{name} filters {spec.model} rows, not {queryset.model._meta.label}")
    if not _is_active_user(user):
        return queryset.none()
    if user.is_superuser:
        return queryset
    user_model = type(user)
    global_rows = permission_rows((spec.name, *spec.implied_by))
    via_role = user_model.groups.through._default_manager.filter(
        **{user_model.groups.field.m2m_field_name(): user.pk},
        group__permissions__in=global_rows,
    )
    direct = user_model.user_permissions.through._default_manager.filter(
        **{user_model.user_permissions.field.m2m_field_name(): user.pk},
        permission__in=global_rows,
    )
    object_row = permission_rows((spec.name,))
    object_pk = Cast(OuterRef("pk"), output_field=CharField())
    on_object_for_user = get_user_obj_perms_model()._default_manager.filter(
        user=user.pk, permission__in=object_row, object_pk=object_pk
    )
    on_object_for_role = get_group_obj_perms_model()._default_manager.filter(
        group__user=user.pk, permission__in=object_row, object_pk=object_pk
    )
    return queryset.filter(
        Q(Exists(via_role))
        | Q(Exists(direct))
        | Q(Exists(on_object_for_user))
        | Q(Exists(on_object_for_role))
    )


def _grant_sql(grants: type[Model], quote: Any) -> str:
    """INSERT ... SELECT of one object right: the permission row found by content type and
    codename in the same statement, nothing inserted when the grant exists already."""
    meta, permission = grants._meta, Permission._meta

    def column(name: str, of: Any = meta) -> str:
        return str(quote(of.get_field(name).column))

    table = quote(meta.db_table)
    permission_id = column("id", permission)
    return (
        f"INSERT INTO {table} ({column('permission')}, {column('content_type')}, "  # noqa: S608
        f"{column('object_pk')}, {column('user')}) "
        f"SELECT p.{permission_id}, p.{column('content_type', permission)}, %s, %s "
        f"FROM {quote(permission.db_table)} p "
        f"WHERE p.{column('content_type', permission)} = %s "
        f"AND p.{column('codename', permission)} = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {table} g WHERE g.{column('user')} = %s "
        f"AND g.{column('permission')} = p.{permission_id} "
        f"AND g.{column('object_pk')} = %s)"
    )


def grant_perm(user: AbstractBaseUser, name: str, obj: Model) -> None:
    """Give ``user`` the right ``name`` on this one object (idempotent).

    One INSERT ... SELECT on a new grant (guardian's ``assign_perm`` costs a permission
    lookup, a SELECT, a savepoint and the INSERT); guardian's own path when it inserted
    nothing (the grant exists, or the permission row is missing: guardian says so)."""
    from guardian.shortcuts import assign_perm
    from guardian.utils import get_user_obj_perms_model

    spec = registry.get(name)
    _check_object_model(spec, obj)
    if obj.pk is None:
        raise ValueError(f"{obj!r} must be saved before a right is granted on it")
    grants = get_user_obj_perms_model()
    content_type = ContentType.objects.get_for_model(obj)
    object_pk = str(obj.pk)
    database = connections[router.db_for_write(grants)]
    with database.cursor() as cursor:
        cursor.execute(
            _grant_sql(grants, database.ops.quote_name),
            [object_pk, user.pk, content_type.pk, spec.codename, user.pk, object_pk],
        )
        inserted = cursor.rowcount
    if inserted != 1:
        assign_perm(spec.perm, user, obj)


def revoke_perm(user: AbstractBaseUser, name: str, obj: Model) -> None:
    """Take the object right back (a no-op when it was not granted)."""
    from guardian.shortcuts import remove_perm

    spec = registry.get(name)
    _check_object_model(spec, obj)
    remove_perm(spec.perm, user, obj)


def permission_names(user: AnyUser, *, held: set[str] | None = None) -> list[str]:
    """The catalog names ``user`` holds globally (every name for a superuser). ``held``:
    the user's ``get_all_permissions()`` when the caller already read it (one query for the
    whole profile, backend.accounts.selectors)."""
    if not _is_active_user(user):
        return []
    if user.is_superuser:
        return sorted(registry.names())
    if held is None:
        held = user.get_all_permissions()
    return sorted(
        spec.name
        for spec in registry.all()
        if spec.perm in held or any(registry.get(n).perm in held for n in spec.implied_by)
    )


def catalog_name(permission: Permission) -> str:
    """The catalog name of a permission row (its codename when it is not in the catalog)."""
    spec = registry.by_perm(f"{permission.content_type.app_label}.{permission.codename}")
    return spec.name if spec is not None else permission.codename


def catalog_permission_rows() -> QuerySet[Permission]:
    """The permission rows of every declared permission."""
    return permission_rows(registry.names())
