"""The role-level rights every chat or mail action needs first. Room rules (members only,
who adds and removes) and mail ownership live in the services and selectors."""

from __future__ import annotations

from backend.accounts.models import User
from backend.core.permissions import require_perm


def require_chat_use(user: User) -> None:
    require_perm(user, "chat.use")


def require_mail_use(user: User) -> None:
    require_perm(user, "mail.use")
