"""Permissions of the messaging area: chat rows live on Room (object rights per room), mail
rows on Mail. Room membership and mail ownership are checked by the services."""

from __future__ import annotations

from backend.accounts.catalog import CUSTOMER, EDITOR
from backend.core.permissions import PermissionSpec

PERMISSIONS: tuple[PermissionSpec, ...] = (
    PermissionSpec(
        "chat.use", "Join rooms and send chat messages", "messaging.Room", roles=(CUSTOMER, EDITOR)
    ),
    PermissionSpec(
        "mail.use", "Send and read internal mail", "messaging.Mail", roles=(CUSTOMER, EDITOR)
    ),
)
