"""Permissions declared by the accounts app, and (for now) by areas whose app does not exist.

Checks go through ``backend.core.permissions`` (``has_perm``/``require_perm``/...).
"""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.core.permissions import PermissionSpec

_USER = "accounts.User"
# Placeholder home of the areas below until their app lands: the commerce and content apps
# take them over in their own ``permissions.py`` (seeding moves the rows' content type and
# keeps the role assignments).
_NOT_YET_HOMED = "accounts.User"

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec("users.view", "List and view any user", _USER),
    PermissionSpec("users.create", "Create users", _USER),
    PermissionSpec("users.update", "Update any user, including roles and active flag", _USER),
    PermissionSpec("users.delete", "Delete users", _USER),
    PermissionSpec("roles.manage", "Create and change roles", "accounts.Role"),
    # --- taken over by their own apps when those land --------------------------------------
    PermissionSpec(
        "products.manage", "Create, update and delete products", _NOT_YET_HOMED, roles=(EDITOR,)
    ),
    PermissionSpec("orders.create", "Place own orders", _NOT_YET_HOMED, roles=(CUSTOMER, EDITOR)),
    PermissionSpec("orders.view_any", "View every order and the live dashboard", _NOT_YET_HOMED),
    PermissionSpec("orders.manage", "Change the status of any order", _NOT_YET_HOMED),
    PermissionSpec(
        "invoices.manage",
        "Create and read any invoice; manage invoice templates",
        _NOT_YET_HOMED,
    ),
    PermissionSpec("posts.create", "Write own blog posts", _NOT_YET_HOMED, roles=(EDITOR,)),
    PermissionSpec(
        "posts.manage", "Edit, publish and delete any post", _NOT_YET_HOMED, roles=(EDITOR,)
    ),
    PermissionSpec(
        "files.upload", "Upload and share own files", _NOT_YET_HOMED, roles=(CUSTOMER, EDITOR)
    ),
    PermissionSpec("files.manage", "Read and delete any file", _NOT_YET_HOMED),
    PermissionSpec("tasks.use", "Keep an own to-do list", _NOT_YET_HOMED, roles=(CUSTOMER, EDITOR)),
    PermissionSpec(
        "mail.use", "Send and read internal mail", _NOT_YET_HOMED, roles=(CUSTOMER, EDITOR)
    ),
)
