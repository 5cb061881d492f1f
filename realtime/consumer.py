"""The one websocket consumer of /ws/v1/: auth, subscriptions, replay, client frames.

Client frames pass through Channels' dispatch; server events do not: the process's hub calls
:meth:`RealtimeConsumer.deliver` with a frame serialized once for all sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from backend.accounts.selectors import user_get_fresh
from backend.accounts.tokens import token_authenticate, token_parse
from backend.core.errors import BadRequest, DomainError, NotFound, PermissionDenied
from realtime import transport
from realtime.frames import FrameContext, get_frame_type, run_sync_handler, validate_payload
from realtime.history import Offset, Replay, StoredEvent, get_history
from realtime.hub import Delivery, Hub, get_hub, spawn
from realtime.publish import publish_ephemeral
from realtime.topics import Topic, authorize_topic, presence_event_data

logger = logging.getLogger(__name__)

# Close codes (docs/protocol.md).
CLOSE_UNAUTHORIZED = 4401
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_TOO_SLOW = 4008
CLOSE_FLOOD = 4429
CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"
CLOSE_RESYNC = 1012  # reconnect and resubscribe with since (README)

CoreHandler = Callable[["RealtimeConsumer", dict[str, Any]], Awaitable[None]]

# Connection ids: unique across processes (presence keys in Redis) without a random draw
# (a system call) per socket.
_PROCESS_PREFIX = uuid.uuid4().hex[:16]
_connection_numbers = itertools.count(1)


# Replays are read from history a page at a time and sent at the pace the client reads.
REPLAY_PAGE = 100
# A socket whose queue stays over half its WS_SEND_QUEUE_BYTES budget this long while a
# replay waits for it to drain is closed (4008): it asks for events and does not read them.
SEND_STALL_TIMEOUT = 10.0


@dataclass(slots=True)
class Subscription:
    topic: Topic
    epoch: str = ""
    last_seq: int = 0
    # Live frames that arrive while the replay is being sent; None once live.
    buffer: deque[tuple[Offset, str]] | None = field(default_factory=deque)
    buffer_bytes: int = 0
    replay_task: asyncio.Task[None] | None = None

    def cancel_replay(self) -> None:
        if self.replay_task is not None and not self.replay_task.done():
            self.replay_task.cancel()


class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Deadlines:
    """The sockets' deadlines (auth timeout, then token expiry) on one loop timer.

    A loop timer per socket held a TimerHandle, a libuv timer, a copy of the context and a
    bound method: about 0.7 KiB per idle socket. Here a socket holds one heap entry with a
    weak reference (a closed socket is not kept alive until its token expires). A socket's
    newer deadline makes its older entries stale; stale entries are dropped when they come
    due, or all at once when they outnumber the live ones.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[tuple[float, int, weakref.ref[RealtimeConsumer], int]] = []
        self.stale = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.numbers = itertools.count()

    def set(self, consumer: RealtimeConsumer, delay: float, code: int) -> None:
        """Replaces ``consumer``'s deadline: in ``delay`` seconds it is sent _close_soon(code)."""
        self.cancel(consumer)
        when, number = self.loop.time() + delay, next(self.numbers)
        consumer._deadline = number
        heapq.heappush(self.heap, (when, number, weakref.ref(consumer), code))
        if self.timer is None or when < self.timer_at:
            self._arm(when)

    def cancel(self, consumer: RealtimeConsumer) -> None:
        if consumer._deadline is None:
            return
        consumer._deadline = None
        self.stale += 1
        if self.stale > 64 and self.stale * 2 > len(self.heap):
            self.heap = [entry for entry in self.heap if self._live(entry) is not None]
            heapq.heapify(self.heap)
            self.stale = 0

    @staticmethod
    def _live(
        entry: tuple[float, int, weakref.ref[RealtimeConsumer], int],
    ) -> RealtimeConsumer | None:
        """The entry's socket, if it is open and this is still its deadline."""
        consumer = entry[2]()
        return consumer if consumer is not None and consumer._deadline == entry[1] else None

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.timer_at = self.loop.call_at(when, self._fire), when

    def _fire(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.heap and self.heap[0][0] <= now:
            entry = heapq.heappop(self.heap)
            consumer = self._live(entry)
            if consumer is None:
                self.stale = max(self.stale - 1, 0)
                continue
            consumer._deadline = None
            consumer._close_soon(entry[3])
        if self.heap:
            self._arm(self.heap[0][0])


_deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
    weakref.WeakKeyDictionary()
)


def get_deadlines() -> Deadlines:
    loop = asyncio.get_running_loop()
    deadlines = _deadlines.get(loop)
    if deadlines is None:
        deadlines = _deadlines[loop] = Deadlines(loop)
    return deadlines


def _reserved_close_code(code: int) -> bool:
    return code != 1000 and not 3000 <= code <= 4999


class RealtimeConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket: events come through the process's hub. This saves
    # a layer channel and a receive task per socket, and keeps a Redis error in the layer's
    # receive from killing the consumer (channels-redis' core layer does that every few
    # seconds under load). An alias that names no layer makes Channels skip it.
    channel_layer_alias = "realtime-no-per-socket-channel"
    # Not None: Channels' __init__ would give every socket an empty list of layer groups.
    groups: tuple[str, ...] = ()
    # Replaced, never mutated: a shared empty frozenset until the first presence subscription
    # (most sockets never make one; an empty set costs 216 bytes per socket).
    presence_topics: frozenset[str] = frozenset()
    # The portable path's queue (servers realtime.transport does not know), made when first
    # needed: under uvicorn and daphne frames go straight to the transport.
    _queue: deque[str] | None = None
    # The number of this socket's entry in the loop's Deadlines, None when it has none.
    _deadline: int | None = None

    hub: Hub
    user_id: int | None
    token_id: int | None

    async def connect(self) -> None:
        self.user_id = None
        self.token_id = None
        self.connection_id = f"{_PROCESS_PREFIX}{next(_connection_numbers):016x}"
        self.subscriptions: dict[str, Subscription] = {}
        self.bucket = TokenBucket(settings.WS_RATE_PER_SECOND, settings.WS_RATE_BURST)
        # Read once: the fan-out checks it for every frame (settings access is not free).
        self.budget: int = settings.WS_SEND_QUEUE_BYTES
        self.closing = False
        self._stalled_since: float | None = None
        self._queued_bytes = 0
        self._drain_task: asyncio.Task[None] | None = None
        transport.limit_incoming_message_size(self.base_send, settings.WS_MAX_FRAME_BYTES)
        await self.accept()
        self.writer = transport.direct_writer(self.base_send)
        get_deadlines().set(self, settings.WS_AUTH_TIMEOUT, CLOSE_AUTH_TIMEOUT)

    def _close_soon(self, code: int) -> None:
        if self.user_id is None or code != CLOSE_AUTH_TIMEOUT:
            spawn(self.close(code=code))

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        if (
            isinstance(code, int)
            and not isinstance(code, bool)
            # Reserved codes (1012) under daphne, and every close under uvicorn, need the
            # server's internals (see realtime/transport.py).
            and transport.close_directly(self.base_send, code, reserved=_reserved_close_code(code))
        ):
            return
        await super().close(code=code, reason=reason)

    async def close_revoked(self) -> None:
        await self.close(code=CLOSE_UNAUTHORIZED)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' AsyncConsumer.__call__ without a channel layer: one source of messages
        # (the client), read in a plain loop; its await_many_dispatch makes a task and an
        # asyncio.wait per message.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels hops to the database thread before every message to close stale
        # connections (aclose_old_connections); every database call here goes through
        # a thread that does that itself (the hub's database batcher, the frame threads), so
        # the hop is skipped.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self._drain_task is not None:
            self._drain_task.cancel()
        get_deadlines().cancel(self)
        for subscription in self.subscriptions.values():
            subscription.cancel_replay()
        hub = getattr(self, "hub", None)
        if hub is not None:
            await hub.unregister(self)
        if self.user_id is not None and hub is not None:
            with contextlib.suppress(Exception):  # the heartbeat no longer refreshes it
                await hub.offline((self.user_id, self.connection_id))
        for topic in list(self.presence_topics):
            with contextlib.suppress(Exception):
                await self._presence_leave(topic)

    # --- outbound ---------------------------------------------------------------------------
    def _unsent_bytes(self) -> int:
        if self.writer is not None:
            return self._queued_bytes + self.writer.buffered()
        return self._queued_bytes + transport.pending_bytes(self.base_send)

    def _over_budget(self) -> bool:
        if self._unsent_bytes() <= self.budget:
            return False
        logger.warning("closing a socket that reads too slowly", extra={"user_id": self.user_id})
        return True

    async def send_text(self, frame: str, framed: bytes | None = None) -> bool:
        """Send one frame within the socket's budget: every frame (live, replayed, replies)
        counts against ``WS_SEND_QUEUE_BYTES``; past it the socket is closed (4008). False
        once the socket is closing."""
        if self.closing:
            return False
        if self._draining():
            return self._enqueue(frame)  # behind the frames already queued, in order
        if self.writer is not None:
            # Straight to the transport, like the hub's fan-out: the ASGI send stack
            # (framing, encoding, the server's send task) cost more than the write.
            if framed is None:
                framed = transport.text_frame(frame.encode())
            return self.push(frame, framed)
        await self.send(text_data=frame)
        if self._over_budget():
            await self.close(code=CLOSE_TOO_SLOW)
            return False
        return True

    def push(self, frame: str, framed: bytes) -> bool:
        """Send a frame without awaiting: ``framed`` is ``frame`` as a websocket frame
        (realtime.transport.text_frame), written straight to the transport when the server
        allows it, else queued for ASGI send. False once closing."""
        return self.push_many(((None, frame, framed),), framed)

    def push_many(self, events: Sequence[Delivery], joined: bytes) -> bool:
        """:meth:`push` for several frames in one write (``joined``: their websocket frames
        end to end), or each queued for ASGI send. False once closing."""
        if self.closing:
            return False
        writer = self.writer
        if writer is None or self._queue or self._drain_task is not None:
            return all(self._enqueue(event[1]) for event in events)
        if not writer.write(joined):
            return False
        if writer.buffered() > self.budget and self._over_budget():
            self.closing_soon(CLOSE_TOO_SLOW)
            return False
        return True

    def closing_soon(self, code: int) -> None:
        spawn(self.close(code=code))

    def _enqueue(self, frame: str) -> bool:
        """The portable path: a per-socket queue drained by one task with ASGI send, so a
        server whose send waits for a slow reader holds up this socket only."""
        if self._queue is None:
            self._queue = deque()
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        if self._over_budget():
            self._queue.clear()
            self._queued_bytes = 0
            self.closing_soon(CLOSE_TOO_SLOW)
            return False
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain())
        return True

    def _draining(self) -> bool:
        return bool(self._queue) or (self._drain_task is not None and not self._drain_task.done())

    async def _drain(self) -> None:
        try:
            while self._queue and not self.closing:
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                await self.send(text_data=frame)
        finally:
            self._drain_task = None

    async def send_paced(self, frame: str, framed: bytes | None = None) -> bool:
        """Send a frame the server chose to send now (a replay), once the socket's queue is
        under half its budget: a replay goes at the pace the client reads, not all at once.
        A client that stops reading is closed (4008) after SEND_STALL_TIMEOUT; re-asking for
        replays does not restart that clock. False once the socket is closing."""
        loop = asyncio.get_running_loop()
        while self._unsent_bytes() > self.budget // 2:
            if self.closing:
                return False
            now = loop.time()
            if self._stalled_since is None:
                self._stalled_since = now
            elif now - self._stalled_since > SEND_STALL_TIMEOUT:
                logger.warning(
                    "closing a socket that does not read its replay",
                    extra={"user_id": self.user_id},
                )
                await self.close(code=CLOSE_TOO_SLOW)
                return False
            # Twisted gives no drain notification through ASGI: poll the transport.
            await asyncio.sleep(0.01)
        self._stalled_since = None
        return await self.send_text(frame, framed)

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send_text(json.dumps(frame, separators=(",", ":")))

    async def send_error(self, code: str, message: str, request_id: Any = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id is not None:
            frame["id"] = request_id
        await self.send_json(frame)

    def deliver(self, topic: str, events: Sequence[Delivery], joined: bytes) -> None:
        """Called by the hub with events of a topic this socket subscribed to, in order
        (``joined``: their websocket frames end to end); never awaits, so the hub writes a
        batch to all its sockets in one go. One write when the socket takes them all."""
        subscription = self.subscriptions.get(topic)
        if subscription is None or self.closing:
            return
        taken: list[Delivery] = []
        for event in events:
            offset, frame = event[0], event[1]
            if offset is not None:
                if subscription.buffer is not None:
                    subscription.buffer.append((offset, frame))
                    subscription.buffer_bytes += len(frame)
                    if subscription.buffer_bytes > self.budget:
                        # The topic runs faster than the client reads its replay.
                        self.closing_soon(CLOSE_TOO_SLOW)
                        return
                    continue
                if offset.epoch == subscription.epoch and offset.seq <= subscription.last_seq:
                    continue
                subscription.epoch, subscription.last_seq = offset.epoch, offset.seq
            elif subscription.buffer is not None:
                continue  # transient frames are not worth replaying
            taken.append(event)
        if len(taken) == len(events):
            self.push_many(taken, joined)
        elif taken:
            self.push_many(taken, b"".join(event[2] for event in taken))

    # --- inbound ----------------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        if not self.bucket.take():
            await self.close(code=CLOSE_FLOOD)
            return
        raw = text_data if text_data is not None else bytes_data or b""
        size = len(raw.encode("utf-8", "surrogatepass")) if isinstance(raw, str) else len(raw)
        if size > settings.WS_MAX_FRAME_BYTES:
            await self.close(code=CLOSE_TOO_BIG)
            return
        request_id = None
        try:
            try:
                frame = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequest(detail="frame is not valid JSON") from exc
            if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                raise BadRequest(detail="frame must be a JSON object with a string type")
            request_id = frame.get("id") if isinstance(frame.get("id"), str | int) else None
            if self.user_id is None:
                if frame["type"] != "auth":
                    await self.close(code=CLOSE_UNAUTHORIZED)
                    return
                await self._on_auth(frame)
                return
            core_handler = _CORE_HANDLERS.get(frame["type"])
            if core_handler is not None:
                await core_handler(self, frame)
            else:
                await self._on_app_frame(frame, request_id)
        except DomainError as exc:
            if self.user_id is None:
                await self.close(code=CLOSE_UNAUTHORIZED)
                return
            await self.send_error(exc.code, exc.detail or exc.title, request_id)
        except (DatabaseError, ConnectionError, TimeoutError, RedisError):
            # A dependency is down or hangs (bounded by its timeouts): the client may retry.
            logger.exception("socket frame handling failed: a dependency is unavailable")
            await self.send_error(
                "unavailable", "a dependency is unavailable; try again shortly", request_id
            )
        except Exception:
            logger.exception("socket frame handling failed")
            await self.send_error("internal", "the server could not handle this frame", request_id)

    async def _on_app_frame(self, frame: dict[str, Any], request_id: Any) -> None:
        frame_type = get_frame_type(frame["type"])
        if frame_type is None:
            raise BadRequest(detail=f"unknown frame type {frame['type'][:50]!r}")
        payload = validate_payload(frame_type, frame)
        ctx = FrameContext(
            user_id=self.user_id or 0,
            connection_id=self.connection_id,
            subscribed_topics=frozenset(self.subscriptions),
        )
        if frame_type.is_async:
            reply = await frame_type.handler(ctx, payload)
        else:
            # Off the event loop: a sync handler may query the database.
            reply = await run_sync_handler(frame_type.handler, ctx, payload)
        if reply is None:
            return
        reply = dict(reply)
        if request_id is not None:
            reply.setdefault("id", request_id)
        await self.send_json(reply)

    async def _on_auth(self, frame: dict[str, Any]) -> None:
        parsed = token_parse(frame.get("token"))
        if parsed is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.hub = await get_hub()
        # Registered before the check, so a revocation racing the check still finds us.
        self.token_id = parsed.token_id
        self.hub.register(self)
        access_token = await self.hub.database.call(_authenticate, frame["token"])
        if access_token is None or self.closing:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.user_id = access_token.user_id
        seconds_left = (access_token.expires_at - timezone.now()).total_seconds()
        # Replaces the auth deadline.
        get_deadlines().set(self, max(seconds_left, 0), CLOSE_UNAUTHORIZED)
        try:
            await self.hub.online((self.user_id, self.connection_id))
        except Exception:
            # Not worth refusing the socket over: the hub's heartbeat records it again.
            logger.warning("could not record the socket as online", exc_info=True)
        await self.send_json({"type": "auth.ok", "user_id": self.user_id})

    # --- core frame types -------------------------------------------------------------------
    async def _authorize(self, topic_name: object) -> Topic:
        def check() -> Topic:
            # A fresh user each time: roles may have changed since the socket authenticated.
            user = user_get_fresh(self.user_id or 0)
            if user is None:
                raise PermissionDenied(detail="unknown user")
            return authorize_topic(user, topic_name)

        return await self.hub.database.call(check)

    async def on_subscribe(self, frame: dict[str, Any]) -> None:
        request_id = frame.get("id") if isinstance(frame.get("id"), str | int) else None
        since = None
        if frame.get("since") is not None:
            since = Offset.parse(frame["since"])
            if since is None:
                raise BadRequest(detail="since must be an offset this server gave out")
        topic = await self._authorize(frame.get("topic"))
        name = topic.name
        if name in self.subscriptions:
            await self._drop_subscription(name)
        elif len(self.subscriptions) >= settings.WS_MAX_SUBSCRIPTIONS:
            raise BadRequest(
                detail=f"at most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per socket"
            )
        subscription = Subscription(topic=topic)
        self.subscriptions[name] = subscription
        try:
            await self.hub.subscribe(name, self)
            history = get_history()
            # Where this process's delivery of the topic stands: every later event reaches
            # this socket (buffered until it goes live), no store round trip.
            hub_offset = self.hub.topic_offset(name)
            first_page: list[StoredEvent]
            if since is None and hub_offset is not None:
                latest, recovered, first_page = hub_offset, True, []
            elif since is None:
                latest = await asyncio.to_thread(history.latest, name)
                recovered, first_page = True, []
            else:
                replay = await self.hub.replays((name, since, REPLAY_PAGE))
                latest, recovered, first_page = replay.latest, replay.recovered, replay.events
        except Exception:
            self.subscriptions.pop(name, None)
            await self.hub.unsubscribe(name, self)
            raise
        answer: dict[str, Any] = {
            "type": "subscribed",
            "topic": name,
            "offset": str(latest),
            "recovered": recovered,
        }
        if request_id is not None:
            answer["id"] = request_id
        if topic.kind.presence:
            await self._presence_join(name)
            answer["presence"] = await asyncio.to_thread(history.presence_list, name)
        await self.send_json(answer)
        if not first_page:
            await self._go_live(subscription, latest)
            return
        # In the background, so the socket keeps reading frames (and its flood limit keeps
        # counting) while the replay waits for the client to read.
        subscription.replay_task = asyncio.create_task(
            self._replay(subscription, latest, first_page), name=f"replay {name}"
        )

    async def _replay(
        self, subscription: Subscription, latest: Offset, page: list[StoredEvent]
    ) -> None:
        """Send the events up to ``latest``, page by page, then go live."""
        name = subscription.topic.name
        replay: Replay | None = None
        try:
            while page:
                for event in page:
                    if event.seq > latest.seq:
                        break
                    frame, framed = self.hub.replay_frame(name, latest.epoch, event)
                    if not await self.send_paced(frame, framed):
                        return
                    subscription.epoch, subscription.last_seq = latest.epoch, event.seq
                if subscription.last_seq >= latest.seq:
                    break
                replay = await self.hub.replays(
                    (name, Offset(latest.epoch, subscription.last_seq), REPLAY_PAGE)
                )
                if not replay.recovered:
                    # Trimmed away while the client read slowly: it cannot be made whole here.
                    await self.close(code=CLOSE_RESYNC)
                    return
                page = replay.events
            await self._go_live(subscription, latest)
        except asyncio.CancelledError:
            # A cancelled task keeps its traceback, and with it this frame, in a reference
            # cycle that only the cyclic collector frees, which the server runs rarely
            # (backend/core/server_gc.py): a client re-subscribing without reading left a
            # page of events behind each time (~1.6 MiB of 20 KiB events). Let go of it now.
            page, replay = [], None
            raise
        except Exception:
            logger.exception("replay failed", extra={"topic": name})
            await self.close(code=CLOSE_RESYNC)

    async def _go_live(self, subscription: Subscription, latest: Offset) -> None:
        """The seam: live frames that came in meanwhile, minus what the replay covered."""
        subscription.epoch, subscription.last_seq = latest.epoch, latest.seq
        buffer = subscription.buffer or deque()
        while buffer:
            offset, live_frame = buffer.popleft()
            if offset.epoch == subscription.epoch and offset.seq <= subscription.last_seq:
                continue
            subscription.epoch, subscription.last_seq = offset.epoch, offset.seq
            if not await self.send_text(live_frame):
                return
        subscription.buffer = None
        subscription.buffer_bytes = 0

    async def _drop_subscription(self, name: str) -> Subscription | None:
        subscription = self.subscriptions.pop(name, None)
        if subscription is None:
            return None
        subscription.cancel_replay()
        await self.hub.unsubscribe(name, self)
        return subscription

    async def on_unsubscribe(self, frame: dict[str, Any]) -> None:
        name = frame.get("topic")
        if not isinstance(name, str) or name not in self.subscriptions:
            raise NotFound(detail="not subscribed to that topic")
        await self._drop_subscription(name)
        if name in self.presence_topics:
            await self._presence_leave(name)
        answer: dict[str, Any] = {"type": "unsubscribed", "topic": name}
        if isinstance(frame.get("id"), str | int):
            answer["id"] = frame["id"]
        await self.send_json(answer)

    async def reauthorize(self) -> None:
        """The user's rights changed: end the subscriptions they no longer allow."""
        for name in list(self.subscriptions):
            try:
                await self._authorize(name)
            except DomainError as exc:
                if await self._drop_subscription(name) is None:
                    continue
                if name in self.presence_topics:
                    await self._presence_leave(name)
                await self.send_json({"type": "unsubscribed", "topic": name, "reason": exc.code})

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def on_auth_again(self, frame: dict[str, Any]) -> None:
        raise BadRequest(detail="already authenticated")

    # --- presence ---------------------------------------------------------------------------
    async def _presence_join(self, topic: str) -> None:
        assert self.user_id is not None  # subscriptions need an authenticated socket
        self.presence_topics |= {topic}
        first = await asyncio.to_thread(
            get_history().presence_join, topic, self.user_id, self.connection_id
        )
        if first:
            await publish_ephemeral(
                topic, "presence.joined", presence_event_data(topic, self.user_id or 0)
            )

    async def _presence_leave(self, topic: str) -> None:
        self.presence_topics -= {topic}
        if self.user_id is None:
            return
        last = await asyncio.to_thread(
            get_history().presence_leave, topic, self.user_id, self.connection_id
        )
        if last:
            await publish_ephemeral(
                topic, "presence.left", presence_event_data(topic, self.user_id or 0)
            )


def _authenticate(token: str) -> Any:
    # The socket path: last_used_at is written in batches, not by this call.
    return token_authenticate(token, defer_last_used=True)


_CORE_HANDLERS: dict[str, CoreHandler] = {
    "subscribe": RealtimeConsumer.on_subscribe,
    "unsubscribe": RealtimeConsumer.on_unsubscribe,
    "ping": RealtimeConsumer.on_ping,
    "auth": RealtimeConsumer.on_auth_again,
}
