"""Permissions of the messaging area; their rows live on Room (object rights per room)."""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.core.permissions import PermissionSpec

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        "chat.use", "Join rooms and send chat messages", "messaging.Room", roles=(CUSTOMER, EDITOR)
    ),
)
