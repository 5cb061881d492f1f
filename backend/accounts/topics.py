"""``user.{id}``: that user only. (``dashboard`` lives in backend/commerce/topics.py.)"""

from __future__ import annotations

from backend.accounts.models import User
from realtime.topics import TopicKind, register_topic_kind


def _authorize_user_topic(user: User, user_id: int | None) -> bool:
    return user.pk == user_id


register_topic_kind(TopicKind(name="user", authorize=_authorize_user_topic))
