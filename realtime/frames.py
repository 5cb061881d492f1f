"""Client frame types as an extension point.

An app declares the frames its clients may send in its own ``frames.py`` (found by
autodiscovery when the realtime app is ready)::

    class SendPayload(BaseModel):
        item_id: int

    @frame_handler("message.send", schema=SendPayload)
    def message_send(ctx: FrameContext, payload: SendPayload) -> dict | None:
        ...
        return {"type": "ack", ...}

The payload is the frame without its ``type`` and ``id``. The consumer validates it with the
schema (``bad_request`` on failure), runs a sync handler on one of ``WS_FRAME_THREADS``
threads (it may query the database; :func:`run_sync_handler`) and an async one on the event
loop, answers a DomainError with an ``error`` frame of
its code, and sends the returned dict as the reply, with the frame's ``id`` echoed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections
from pydantic import BaseModel, ValidationError

from backend.core.errors import BadRequest

if TYPE_CHECKING:
    from backend.accounts.models import User

# Handled by the consumer itself; no app may claim them.
CORE_FRAME_TYPES = frozenset({"auth", "subscribe", "unsubscribe", "ping"})


@dataclass(frozen=True)
class FrameContext:
    """What a handler knows about the socket that sent the frame."""

    user_id: int
    connection_id: str
    subscribed_topics: frozenset[str]

    def user(self) -> User | None:
        """The sender, fresh from the database (rights may have changed since auth); None
        when the account is gone. Synchronous: call it from a sync handler."""
        from backend.accounts.models import User

        return User.objects.filter(pk=self.user_id).first()

    def is_subscribed(self, topic: str) -> bool:
        """Whether this socket holds a subscription to ``topic`` (authorized when it
        subscribed, re-checked whenever the user's rights change)."""
        return topic in self.subscribed_topics


FrameResult = dict[str, Any] | None
Handler = Callable[[FrameContext, Any], Any]


@dataclass(frozen=True)
class FrameType:
    name: str
    schema: type[BaseModel]
    handler: Handler
    is_async: bool


_FRAME_TYPES: dict[str, FrameType] = {}


def frame_handler(frame_type: str, *, schema: type[BaseModel]) -> Callable[[Handler], Handler]:
    """Register ``handler`` for client frames of ``frame_type``; twice is an error."""

    def register(handler: Handler) -> Handler:
        if frame_type in CORE_FRAME_TYPES or frame_type in _FRAME_TYPES:
            raise ImproperlyConfigured(f"frame type {frame_type!r} is registered twice")
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise ImproperlyConfigured(f"frame type {frame_type!r}: schema must be a BaseModel")
        _FRAME_TYPES[frame_type] = FrameType(
            name=frame_type,
            schema=schema,
            handler=handler,
            is_async=inspect.iscoroutinefunction(handler),
        )
        return handler

    return register


def unregister_frame_handler(frame_type: str) -> None:
    """For tests that register a handler of their own."""
    _FRAME_TYPES.pop(frame_type, None)


def get_frame_type(frame_type: str) -> FrameType | None:
    return _FRAME_TYPES.get(frame_type)


def validate_payload(frame_type: FrameType, frame: dict[str, Any]) -> BaseModel:
    payload = {key: value for key, value in frame.items() if key not in ("type", "id")}
    try:
        return frame_type.schema.model_validate(payload)
    except ValidationError as exc:
        raise BadRequest(detail=describe_validation_error(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    """``item_id: Input should be a valid integer; body: Field required`` (bounded)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "frame"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)[:500]


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _frame_threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    max_workers=max(1, settings.WS_FRAME_THREADS), thread_name_prefix="ws-frame"
                )
    return _pool


def _call_with_fresh_connections(handler: Handler, ctx: FrameContext, payload: Any) -> Any:
    # What Channels' database_sync_to_async does around a call: no stale connection used,
    # none left broken for the thread's next frame.
    close_old_connections()
    try:
        return handler(ctx, payload)
    finally:
        close_old_connections()


async def run_sync_handler(handler: Handler, ctx: FrameContext, payload: Any) -> Any:
    """Run a sync frame handler on the process's frame threads. Channels'
    ``database_sync_to_async`` would run every socket's handlers one after another on a single
    thread: under load (200 locust users) a ``message.send`` waited seconds for its ack behind
    other sockets' frames. A socket's own frames stay in order: the consumer awaits each one
    before reading the next."""
    call = functools.partial(
        contextvars.copy_context().run, _call_with_fresh_connections, handler, ctx, payload
    )
    return await asyncio.get_running_loop().run_in_executor(_frame_threads(), call)
