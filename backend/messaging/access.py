"""Who may use chat and mail. Room rules (members only, who adds and removes) live in the
services; these are the role-level rights every chat or mail action needs first."""

from __future__ import annotations

from backend.accounts.models import User
from backend.accounts.permissions import require_permission


def require_chat_use(user: User) -> None:
    require_permission(user, "chat.use")


def require_mail_use(user: User) -> None:
    require_permission(user, "mail.use")
