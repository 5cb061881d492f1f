"""Topic kinds and their authorizers.

A topic is ``<kind>`` or ``<kind>.<id>``. Each app declares its kinds in its own
``topics.py`` (found by autodiscovery when the realtime app is ready) with
:func:`register_topic_kind`; the socket asks :func:`authorize_topic` and nothing else.
A refused topic and a missing one both answer ``not_found`` when the kind has ids, so a
subscriber learns nothing about objects it may not see.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from backend.core.errors import BadRequest, NotFound, PermissionDenied

_TOPIC = re.compile(r"(?P<kind>[a-z][a-z_]{0,30})(?:\.(?P<id>[1-9][0-9]{0,17}))?", re.ASCII)


class BadTopic(BadRequest):
    title = "Bad topic"


def default_presence_data(object_id: int | None, user_id: int) -> dict[str, Any]:
    return {"user_id": user_id}


@dataclass(frozen=True)
class TopicKind:
    name: str
    # For kinds with ids: (user, id) -> allowed. For singletons: (user, None) -> allowed.
    authorize: Callable[[Any, int | None], bool]
    has_id: bool = True
    presence: bool = False
    # Singletons answer forbidden (their existence is public); per-object kinds not_found.
    refuse_as_not_found: bool = True
    # The data of presence.joined / presence.left: (object_id, user_id) -> dict.
    presence_data: Callable[[int | None, int], dict[str, Any]] = default_presence_data


@dataclass(frozen=True)
class Topic:
    kind: TopicKind
    object_id: int | None

    @property
    def name(self) -> str:
        return self.kind.name if self.object_id is None else f"{self.kind.name}.{self.object_id}"


_KINDS: dict[str, TopicKind] = {}


def register_topic_kind(kind: TopicKind) -> None:
    if not _TOPIC.fullmatch(kind.name) or "." in kind.name:
        raise ImproperlyConfigured(f"bad topic kind name {kind.name!r}")
    if kind.name in _KINDS:
        raise ImproperlyConfigured(f"topic kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind


def unregister_topic_kind(name: str) -> None:
    """For tests that register a kind of their own."""
    _KINDS.pop(name, None)


def topic_kinds() -> dict[str, TopicKind]:
    return dict(_KINDS)


def parse_topic(name: object) -> Topic:
    if not isinstance(name, str):
        raise BadTopic(detail="topic must be a string")
    match = _TOPIC.fullmatch(name)
    if match is None:
        raise BadTopic(detail=f"malformed topic {name[:100]!r}")
    kind = _KINDS.get(match["kind"])
    if kind is None:
        raise NotFound(detail=f"unknown topic kind {match['kind']!r}")
    object_id = int(match["id"]) if match["id"] else None
    if kind.has_id != (object_id is not None):
        raise BadTopic(
            detail=f"topic kind {kind.name!r} " + ("needs" if kind.has_id else "takes no") + " id"
        )
    return Topic(kind=kind, object_id=object_id)


def presence_event_data(topic_name: str, user_id: int) -> dict[str, Any]:
    """``presence.joined`` / ``presence.left`` data, as the topic's kind shapes it."""
    topic = parse_topic(topic_name)
    return topic.kind.presence_data(topic.object_id, user_id)


def authorize_topic(user: Any, name: object) -> Topic:
    """The parsed topic when ``user`` may subscribe to it; raises a DomainError otherwise.

    Runs synchronously (it may query the database): call it through database_sync_to_async.
    """
    topic = parse_topic(name)
    if user is None or not user.is_active or not topic.kind.authorize(user, topic.object_id):
        if topic.kind.refuse_as_not_found:
            raise NotFound(detail=f"no topic {topic.name}")
        raise PermissionDenied(detail=f"not allowed to subscribe to {topic.name}")
    return topic
