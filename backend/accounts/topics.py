"""``user.{id}`` (that user only) and, for now, ``dashboard``."""

from __future__ import annotations

from backend.accounts.models import User
from backend.core.permissions import has_perm
from realtime.topics import TopicKind, register_topic_kind


def _authorize_user_topic(user: User, user_id: int | None) -> bool:
    return user.pk == user_id


def _authorize_dashboard(user: User, _: int | None) -> bool:
    return has_perm(user, "orders.view_any")


register_topic_kind(TopicKind(name="user", authorize=_authorize_user_topic))

# Temporary home: the dashboard belongs to commerce and moves to backend/commerce/topics.py
# when that app arrives.
register_topic_kind(
    TopicKind(
        name="dashboard", authorize=_authorize_dashboard, has_id=False, refuse_as_not_found=False
    )
)
