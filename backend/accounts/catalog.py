"""The permissions and default roles every environment starts with.

A permission is named ``<area>.<action>``; its area is its ``group`` in the API. Roles are
Django groups with a description. Adding a permission here and running ``migrate`` (or
``seed_roles``) creates it; Admin always holds every permission in the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PermissionSpec:
    name: str
    description: str

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def action(self) -> str:
        return self.name.split(".", 1)[1]


PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec("users.view", "List and view any user"),
    PermissionSpec("users.create", "Create users"),
    PermissionSpec("users.update", "Update any user, including roles and active flag"),
    PermissionSpec("users.delete", "Delete users"),
    PermissionSpec("roles.manage", "Create and change roles"),
    PermissionSpec("products.manage", "Create, update and delete products"),
    PermissionSpec("orders.create", "Place own orders"),
    PermissionSpec("orders.view_any", "View every order and the live dashboard"),
    PermissionSpec("orders.manage", "Change the status of any order"),
    PermissionSpec("invoices.manage", "Create and read any invoice; manage invoice templates"),
    PermissionSpec("posts.create", "Write own blog posts"),
    PermissionSpec("posts.manage", "Edit, publish and delete any post"),
    PermissionSpec("files.upload", "Upload and share own files"),
    PermissionSpec("files.manage", "Read and delete any file"),
    PermissionSpec("tasks.use", "Keep an own to-do list"),
    PermissionSpec("mail.use", "Send and read internal mail"),
    PermissionSpec("chat.use", "Join rooms and send chat messages"),
)

ADMIN = "Admin"
EDITOR = "Editor"
CUSTOMER = "Customer"

_CUSTOMER_PERMISSIONS = (
    "orders.create",
    "files.upload",
    "tasks.use",
    "mail.use",
    "chat.use",
)

ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    ADMIN: ("Full access to everything.", tuple(p.name for p in PERMISSIONS)),
    EDITOR: (
        "Manages content and the catalog.",
        (*_CUSTOMER_PERMISSIONS, "posts.create", "posts.manage", "products.manage"),
    ),
    CUSTOMER: (
        "Default role for self-registered users: own orders, tasks, mail and chat.",
        _CUSTOMER_PERMISSIONS,
    ),
}

DEFAULT_ROLE = CUSTOMER
PERMISSION_NAMES = frozenset(p.name for p in PERMISSIONS)
