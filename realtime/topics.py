"""Topic kinds and their authorizers, in one place.

A topic is ``<kind>`` or ``<kind>.<id>``. Each domain registers its kind with an authorizer
(``user, object_id -> bool``); the socket asks :func:`authorize_topic` and nothing else.
A refused topic and a missing one both answer ``not_found`` when the kind has ids, so a
subscriber learns nothing about objects it may not see.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.core.errors import DomainError, NotFound, PermissionDenied

_TOPIC = re.compile(r"^(?P<kind>[a-z][a-z_]{0,30})(?:\.(?P<id>[1-9][0-9]{0,17}))?$")


class BadTopic(DomainError):
    code = "bad_request"
    title = "Bad topic"


@dataclass(frozen=True)
class TopicKind:
    name: str
    # For kinds with ids: (user, id) -> allowed. For singletons: (user, None) -> allowed.
    authorize: Callable[[Any, int | None], bool]
    has_id: bool = True
    presence: bool = False
    # Singletons answer forbidden (their existence is public); per-object kinds not_found.
    refuse_as_not_found: bool = True


@dataclass(frozen=True)
class Topic:
    kind: TopicKind
    object_id: int | None

    @property
    def name(self) -> str:
        return self.kind.name if self.object_id is None else f"{self.kind.name}.{self.object_id}"


_KINDS: dict[str, TopicKind] = {}


def register_topic_kind(kind: TopicKind) -> None:
    _KINDS[kind.name] = kind


def topic_kinds() -> dict[str, TopicKind]:
    return dict(_KINDS)


def parse_topic(name: object) -> Topic:
    if not isinstance(name, str):
        raise BadTopic(detail="topic must be a string")
    match = _TOPIC.match(name)
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


def authorize_topic(user: Any, name: object) -> Topic:
    """The parsed topic when ``user`` may subscribe to it; raises a DomainError otherwise.

    Runs synchronously (it may query the database): call it through database_sync_to_async.
    """
    topic = parse_topic(name)
    if not user.is_active or not topic.kind.authorize(user, topic.object_id):
        if topic.kind.refuse_as_not_found:
            raise NotFound(detail=f"no topic {topic.name}")
        raise PermissionDenied(detail=f"not allowed to subscribe to {topic.name}")
    return topic
