"""``posts``: the public feed of published posts; any authenticated user may subscribe."""

from __future__ import annotations

from typing import Any

from realtime.topics import TopicKind, register_topic_kind


def _authorize_posts(user: Any, object_id: int | None) -> bool:
    # Published posts are public; the core has already refused inactive users.
    return True


register_topic_kind(
    TopicKind(name="posts", authorize=_authorize_posts, has_id=False, refuse_as_not_found=False)
)
