"""Apps extend the socket through topics.py and frames.py; the core knows no domain."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, Field

from backend.core.errors import Conflict, NotFound
from realtime import frames as frames_module
from realtime import topics as topics_module
from realtime.frames import FrameContext, frame_handler
from tests.factories import UserFactory, bearer_for
from tests.realtime.conftest import run_sync


class EchoPayload(BaseModel):
    text: str = Field(max_length=20)
    times: int = Field(default=1, ge=1, le=3, strict=True)


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Frame types and topic kinds a test registers are removed after it."""
    names: list[str] = []
    yield names
    for name in names:
        frames_module.unregister_frame_handler(name)
        topics_module.unregister_topic_kind(name)


def test_apps_declare_their_topic_kinds_and_frames_by_autodiscovery() -> None:
    kinds = topics_module.topic_kinds()
    assert {"user", "room", "dashboard"} <= set(kinds)
    assert kinds["room"].authorize.__module__ == "backend.messaging.topics"
    assert kinds["user"].authorize.__module__ == "backend.accounts.topics"
    typing = frames_module.get_frame_type("typing")
    assert typing is not None and typing.handler.__module__ == "backend.messaging.frames"


def test_the_core_names_no_domain() -> None:
    import pathlib

    import realtime

    source = "\n".join(
        path.read_text() for path in pathlib.Path(realtime.__file__).parent.glob("*.py")
    )
    for pattern in (
        r"room_id",
        r"\bdashboard\b",
        r"orders\.",
        r"backend\.messaging",
        r"[\'\"]typing[\'\"]",
    ):
        assert re.search(pattern, source) is None, pattern


def test_registering_a_frame_type_twice_raises(registered) -> None:
    registered.append("test.twice")

    @frame_handler("test.twice", schema=EchoPayload)
    def first(ctx: FrameContext, payload: EchoPayload) -> None:
        return None

    with pytest.raises(ImproperlyConfigured):

        @frame_handler("test.twice", schema=EchoPayload)
        def second(ctx: FrameContext, payload: EchoPayload) -> None:
            return None

    with pytest.raises(ImproperlyConfigured):
        frame_handler("typing", schema=EchoPayload)(first)  # an app's own, autodiscovered
    for core_type in ("subscribe", "unsubscribe", "ping", "auth"):
        with pytest.raises(ImproperlyConfigured):
            frame_handler(core_type, schema=EchoPayload)(first)


def test_registering_a_topic_kind_twice_raises(registered) -> None:
    registered.append("twice")
    kind = topics_module.TopicKind(name="twice", authorize=lambda user, object_id: True)
    topics_module.register_topic_kind(kind)
    with pytest.raises(ImproperlyConfigured):
        topics_module.register_topic_kind(kind)
    with pytest.raises(ImproperlyConfigured):
        topics_module.register_topic_kind(
            topics_module.TopicKind(name="room", authorize=lambda user, object_id: True)
        )


def test_autodiscovery_again_registers_nothing_twice() -> None:
    # Modules are imported once; running the discovery again (another ready()) is harmless.
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("topics")
    autodiscover_modules("frames")


pytestmark_db = pytest.mark.django_db(transaction=True)


@pytestmark_db
async def test_handler_reply_echoes_the_frame_id(open_socket, registered) -> None:
    registered.append("test.echo")
    seen: list[Any] = []

    @frame_handler("test.echo", schema=EchoPayload)
    def echo(ctx: FrameContext, payload: EchoPayload) -> dict[str, Any]:
        user = ctx.user()
        seen.append((ctx.user_id, ctx.connection_id, user.pk if user else None))
        return {"type": "test.echoed", "text": payload.text * payload.times}

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.send({"type": "test.echo", "text": "ab", "times": 2, "id": "r1"})
    assert await socket.recv() == {"type": "test.echoed", "text": "abab", "id": "r1"}
    await socket.send({"type": "test.echo", "text": "ab", "id": 7})
    assert await socket.recv() == {"type": "test.echoed", "text": "ab", "id": 7}
    await socket.send({"type": "test.echo", "text": "ab"})
    assert await socket.recv() == {"type": "test.echoed", "text": "ab"}
    assert seen[0][0] == user.pk and seen[0][2] == user.pk
    assert len(seen[0][1]) == 32
    assert len({entry[1] for entry in seen}) == 1  # one connection


@pytestmark_db
@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ({"type": "test.echo"}, ["text", "Field required"]),
        ({"type": "test.echo", "text": 5}, ["text", "string"]),
        ({"type": "test.echo", "text": "x" * 21}, ["text", "20"]),
        ({"type": "test.echo", "text": "x", "times": "2"}, ["times", "integer"]),
        ({"type": "test.echo", "text": "x", "times": 9}, ["times", "3"]),
    ],
)
async def test_schema_failure_answers_bad_request_with_a_readable_message(
    open_socket, registered, frame, words
) -> None:
    registered.append("test.echo")
    calls: list[EchoPayload] = []

    @frame_handler("test.echo", schema=EchoPayload)
    def echo(ctx: FrameContext, payload: EchoPayload) -> None:
        calls.append(payload)

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.send({**frame, "id": "bad"})
    answer = await socket.recv()
    assert answer["type"] == "error" and answer["code"] == "bad_request"
    assert answer["id"] == "bad"
    for word in words:
        assert word in answer["message"], answer["message"]
    assert calls == []


@pytestmark_db
@pytest.mark.parametrize(("error", "code"), [(NotFound, "not_found"), (Conflict, "conflict")])
async def test_domain_error_becomes_an_error_frame_with_its_code(
    open_socket, registered, error, code
) -> None:
    registered.append("test.fail")

    @frame_handler("test.fail", schema=EchoPayload)
    def fail(ctx: FrameContext, payload: EchoPayload) -> None:
        raise error(detail="no such thing")

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.send({"type": "test.fail", "text": "x", "id": "f1"})
    assert await socket.recv() == {
        "type": "error",
        "code": code,
        "message": "no such thing",
        "id": "f1",
    }
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}


@pytestmark_db
async def test_unexpected_exception_answers_internal_and_the_socket_lives(
    open_socket, registered
) -> None:
    registered.append("test.crash")

    @frame_handler("test.crash", schema=EchoPayload)
    def crash(ctx: FrameContext, payload: EchoPayload) -> None:
        raise RuntimeError("bug")

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.send({"type": "test.crash", "text": "x", "id": 3})
    answer = await socket.recv()
    assert answer["code"] == "internal" and answer["id"] == 3
    assert "bug" not in answer["message"]
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}


@pytestmark_db
async def test_sync_handlers_run_off_the_event_loop_async_ones_on_it(
    open_socket, registered
) -> None:
    registered.extend(["test.sync", "test.async"])
    loop_thread = threading.get_ident()
    where: dict[str, Any] = {}

    @frame_handler("test.sync", schema=EchoPayload)
    def sync_handler(ctx: FrameContext, payload: EchoPayload) -> dict[str, str]:
        where["sync_thread"] = threading.get_ident()
        try:
            asyncio.get_running_loop()
            where["sync_loop"] = True
        except RuntimeError:
            where["sync_loop"] = False
        return {"type": "done"}

    @frame_handler("test.async", schema=EchoPayload)
    async def async_handler(ctx: FrameContext, payload: EchoPayload) -> dict[str, str]:
        where["async_thread"] = threading.get_ident()
        return {"type": "done"}

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.send({"type": "test.sync", "text": "x"})
    assert await socket.recv() == {"type": "done"}
    await socket.send({"type": "test.async", "text": "x"})
    assert await socket.recv() == {"type": "done"}
    assert where["sync_thread"] != loop_thread
    assert where["sync_loop"] is False
    assert where["async_thread"] == loop_thread


@pytestmark_db
async def test_one_sockets_slow_handler_does_not_hold_up_another_socket(
    open_socket, registered
) -> None:
    # Both handlers must be inside at once to pass the barrier: with every socket's handlers
    # on one thread (Channels' database_sync_to_async) the first waits alone and breaks it.
    registered.append("test.meet")
    barrier = threading.Barrier(2, timeout=5)

    @frame_handler("test.meet", schema=EchoPayload)
    def meet(ctx: FrameContext, payload: EchoPayload) -> dict[str, Any]:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return {"type": "alone"}
        return {"type": "met"}

    first_user, second_user = await run_sync(UserFactory), await run_sync(UserFactory)
    first = await open_socket(await run_sync(bearer_for, first_user))
    second = await open_socket(await run_sync(bearer_for, second_user))
    await first.send({"type": "test.meet", "text": "a"})
    await second.send({"type": "test.meet", "text": "b"})
    assert await first.recv() == {"type": "met"}
    assert await second.recv() == {"type": "met"}


@pytestmark_db
async def test_one_sockets_frames_are_handled_in_order(open_socket, registered) -> None:
    registered.append("test.seq")
    handled: list[str] = []

    @frame_handler("test.seq", schema=EchoPayload)
    def record(ctx: FrameContext, payload: EchoPayload) -> dict[str, Any]:
        handled.append(payload.text)
        return {"type": "seen", "text": payload.text}

    socket = await open_socket(await run_sync(bearer_for, await run_sync(UserFactory)))
    texts = [str(n) for n in range(12)]
    for text in texts:
        await socket.send({"type": "test.seq", "text": text})
    assert [(await socket.recv())["text"] for _ in texts] == texts
    assert handled == texts


@pytestmark_db
async def test_handler_sees_its_sockets_subscriptions(open_socket, registered) -> None:
    registered.append("test.subs")

    @frame_handler("test.subs", schema=EchoPayload)
    def subs(ctx: FrameContext, payload: EchoPayload) -> dict[str, Any]:
        return {"type": "subs", "subscribed": ctx.is_subscribed(payload.text)}

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    topic = f"user.{user.pk}"
    await socket.send({"type": "test.subs", "text": topic})
    assert (await socket.recv())["subscribed"] is False
    await socket.subscribe(topic)
    await socket.send({"type": "test.subs", "text": topic})
    assert (await socket.recv())["subscribed"] is True


@pytestmark_db
async def test_presence_payload_comes_from_the_topic_kind(open_socket, registered) -> None:
    registered.append("board")
    topics_module.register_topic_kind(
        topics_module.TopicKind(
            name="board",
            authorize=lambda user, object_id: True,
            presence=True,
            presence_data=lambda object_id, user_id: {"board": object_id, "who": user_id},
        )
    )
    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    answer = await socket.subscribe("board.42")
    assert answer["presence"] == [user.pk]
    while True:
        frame = await socket.recv()
        if frame["type"] == "event":
            break
    assert frame["event"] == "presence.joined"
    assert frame["data"] == {"board": 42, "who": user.pk}
