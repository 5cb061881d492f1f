"""The default roles every environment starts with, and the permission catalog's views.

Permissions are declared per app in ``backend/<app>/permissions.py`` (see
``backend.core.permissions``); a spec's ``roles`` says which default roles hold it. Roles
are Django groups with a description. ``migrate`` (post_migrate seeding) creates both;
Admin always holds every declared permission.
"""

from __future__ import annotations

from backend.core.permissions import PermissionSpec, registry

ADMIN = "Admin"
EDITOR = "Editor"
CUSTOMER = "Customer"

ROLE_DESCRIPTIONS: dict[str, str] = {
    ADMIN: "Full access to everything.",
    EDITOR: "Manages content and the catalog.",
    CUSTOMER: "Default role for self-registered users: own orders, tasks, mail and chat.",
}

DEFAULT_ROLE = CUSTOMER


def permission_specs() -> list[PermissionSpec]:
    """Every declared permission, sorted by name."""
    return registry.all()


def permission_names() -> frozenset[str]:
    return registry.names()


def default_roles() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Role name -> (description, the permission names it holds by default)."""
    specs = registry.all()
    for spec in specs:
        unknown = set(spec.roles) - set(ROLE_DESCRIPTIONS)
        if unknown:
            raise ValueError(f"{spec.name} names roles that are not defaults: {sorted(unknown)}")
    roles: dict[str, tuple[str, tuple[str, ...]]] = {}
    for role, description in ROLE_DESCRIPTIONS.items():
        granted = tuple(s.name for s in specs if role == ADMIN or role in s.roles)
        roles[role] = (description, granted)
    return roles
