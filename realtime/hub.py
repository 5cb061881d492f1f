"""One hub per server process (per event loop): the process-local fan-out.

The hub holds one channel-layer channel. For each topic that at least one local socket
subscribes to, it joins that topic's group once; an event then crosses the layer once per
process (one PUBLISH with channels-redis' pub/sub layer), is turned into a frame once, and
the frame is written straight to every local subscriber (a busy hub writes the events that
came meanwhile together: see ``FAN_OUT_HOLD_MAX``). Per-socket ``group_send`` would cost
a layer queue, a task wake-up and a database-connection hop per socket and event.

Ordering and gaps: offsets are consecutive per topic, so the hub knows the next one it should
see. An event that skips ahead makes it read the missing ones from the topic's history first;
an old or repeated one is dropped. Every ``REALTIME_SYNC_INTERVAL`` it also compares what it
delivered with each hosted topic's latest offset, which repairs what a layer reconnect drops
silently (channels-redis re-subscribes but loses what was published meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer
from django.conf import settings
from prometheus_client import Gauge

from realtime import presence
from realtime.batching import Batcher, CallBatcher, run_each_with_database
from realtime.history import Offset, Replay, StoredEvent, get_history, topic_group
from realtime.publish import CONTROL_GROUP, publish_ephemeral
from realtime.topics import presence_event_data
from realtime.transport import text_frame

if TYPE_CHECKING:
    from realtime.consumer import RealtimeConsumer

logger = logging.getLogger(__name__)


_background_tasks: set[asyncio.Task[Any]] = set()

# What a process holds, refreshed every REALTIME_SYNC_INTERVAL: sockets, topics it listens to
# on the channel layer, and asyncio tasks. Once its sockets are gone they fall back to where
# they started; what stays up is a leak (the soak test checks it).
SOCKETS = Gauge(
    "triton_realtime_sockets", "Open sockets of this process", multiprocess_mode="livesum"
)
TOPICS = Gauge(
    "triton_realtime_topics",
    "Topics this process listens to on the channel layer",
    multiprocess_mode="livesum",
)
LOOP_TASKS = Gauge(
    "triton_realtime_loop_tasks",
    "asyncio tasks on this process's event loop (the server's own included)",
    multiprocess_mode="livesum",
)

# Fan-out write coalescing. Each write to a socket costs a system call, and on a busy server
# most of its CPU is the kernel's (over loopback the receiver's TCP processing and wake-up
# too): at 5,000 subscribers one event a socket per write was 7 us of system time per
# delivery, the bare websockets server 1 us, because it was behind and wrote 25 events a
# socket per write. So while the previous batch's cost (Python and kernel) has not yet
# passed since it was written, the hub holds new events, at most FAN_OUT_HOLD_MAX seconds,
# and writes them together: a quiet hub writes at once, a saturated one writes more per
# system call instead of falling behind one event at a time.
FAN_OUT_HOLD_MAX = 0.1

# Replayed frames kept for reuse (see Hub.replay_frame); the cache starts over when full.
REPLAY_FRAME_CACHE = 10_000

# Threads of the sockets' blocking calls, shared by every hub (see realtime/batching.py). One
# database thread, like Channels' database_sync_to_async: its batches run one after another.
_database_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realtime-db")
_redis_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realtime-redis")


# An event as the hub hands it to a socket: its offset (None: transient), its frame, and the
# frame as a websocket frame (realtime.transport.text_frame).
Delivery = tuple[Offset | None, str, bytes]


def spawn(coroutine: Any) -> None:
    """Run a coroutine in the background, keeping a reference until it finishes."""
    task = asyncio.ensure_future(coroutine)
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)


def _announce_online(entries: list[tuple[int, str]], *, online: bool) -> None:
    """presence.online_changed once per user of a batch of sockets that opened (or closed),
    on this thread, never the event loop. Per user, not per socket: a receiver recomputes
    what depends on the user's being online, once is enough (a storm brings users' several
    sockets back in the same batch, and a receiver may cost a round trip)."""
    for user_id in dict.fromkeys(user_id for user_id, _connection_id in entries):
        for receiver, error in presence.online_changed.send_robust(
            sender=None, user_id=user_id, online=online
        ):
            if isinstance(error, Exception):
                logger.warning("online_changed receiver %r failed", receiver, exc_info=error)


def event_frame(topic: str, event: str, offset: Offset | None, data_json: str) -> str:
    """The serialized ``event`` frame, built once per event and process."""
    offset_json = json.dumps(str(offset)) if offset is not None else "null"
    return (
        f'{{"type":"event","topic":{json.dumps(topic)},"event":{json.dumps(event)},'
        f'"offset":{offset_json},"data":{data_json}}}'
    )


@dataclass
class TopicState:
    topic: str
    subscribers: set[RealtimeConsumer] = field(default_factory=set)
    epoch: str = ""
    last_seq: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[dict[str, Any]] = field(default_factory=list)
    # The latest offset seen at the previous sync pass: lagging behind it means lost events.
    seen_latest: Offset | None = None


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel_name = ""
        self.topics: dict[str, TopicState] = {}
        self.connections: set[RealtimeConsumer] = set()
        self.history = get_history()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        # The sockets' blocking calls, batched (realtime/batching.py): the token check and
        # subscribe authorization (database), online marks and replay reads (Redis).
        self._replay_frames: dict[tuple[str, str, int], tuple[str, bytes]] = {}
        # Events held for the next flush (see FAN_OUT_HOLD_MAX), when it is scheduled, when
        # the previous one ended and what it cost (loop time, seconds).
        self._batch: list[tuple[TopicState, Offset | None, str, bytes, int | None]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._flushed_at = 0.0
        self._flush_cost = 0.0
        self.database = CallBatcher(run_each_with_database, _database_thread)
        self.online = Batcher[tuple[int, str], None](self._mark_online, _redis_thread)
        self.offline = Batcher[tuple[int, str], None](self._mark_offline, _redis_thread)
        self.replays = Batcher[tuple[str, Offset, int | None], Replay](
            self.history.read_after_many, _redis_thread
        )

    def _mark_online(self, entries: list[tuple[int, str]]) -> list[BaseException | None]:
        """presence.socket_opened for a batch of sockets: one Redis pipeline."""
        try:
            self.history.online_refresh(entries)
        except Exception as exc:
            return [exc] * len(entries)
        _announce_online(entries, online=True)
        return [None] * len(entries)

    def _mark_offline(self, entries: list[tuple[int, str]]) -> list[BaseException | None]:
        """presence.socket_closed for a batch of sockets: one Redis command."""
        try:
            self.history.online_remove_many(entries)
        except Exception as exc:
            return [exc] * len(entries)
        _announce_online(entries, online=False)
        return [None] * len(entries)

    def replay_frame(self, topic: str, epoch: str, event: StoredEvent) -> tuple[str, bytes]:
        """A stored event's frame, and as a websocket frame: built once per process for all
        the sockets that replay it (after a reconnect storm, thousands replay the same)."""
        key = (topic, epoch, event.seq)  # an offset names one event for good
        frames = self._replay_frames.get(key)
        if frames is None:
            if len(self._replay_frames) >= REPLAY_FRAME_CACHE:
                self._replay_frames.clear()
            frame = event_frame(topic, event.event, Offset(epoch, event.seq), event.data_json)
            frames = self._replay_frames[key] = (frame, text_frame(frame.encode()))
        return frames

    def topic_offset(self, topic: str) -> Offset | None:
        """Where this process's delivery of a topic stands: every later event reaches its
        subscribers. None unless the topic is hosted here and ready."""
        state = self.topics.get(topic)
        if state is None or not state.ready.is_set():
            return None
        return Offset(state.epoch, state.last_seq)

    async def start(self) -> None:
        self.channel_name = await self.layer.new_channel("rt.hub.")
        await self.layer.group_add(CONTROL_GROUP, self.channel_name)
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="realtime-hub-receive"),
            asyncio.create_task(self._sync_loop(), name="realtime-hub-sync"),
        ]
        if settings.REALTIME_INPROCESS_SWEEP:
            self._tasks.append(asyncio.create_task(self._sweep_loop(), name="realtime-sweep"))

    # --- connections and subscriptions ------------------------------------------------------
    def register(self, consumer: RealtimeConsumer) -> None:
        self.connections.add(consumer)

    async def unregister(self, consumer: RealtimeConsumer) -> None:
        self.connections.discard(consumer)
        for topic in list(consumer.subscriptions):
            await self.unsubscribe(topic, consumer)

    async def subscribe(self, topic: str, consumer: RealtimeConsumer) -> None:
        state = self.topics.get(topic)
        if state is None:
            state = TopicState(topic)
            self.topics[topic] = state
            try:
                # Join first, then read where the topic stands: nothing falls in between.
                await self.layer.group_add(topic_group(topic), self.channel_name)
                latest = await asyncio.to_thread(self.history.latest, topic)
            except Exception:
                self.topics.pop(topic, None)
                state.ready.set()
                raise
            async with self._lock:
                state.epoch, state.last_seq = latest.epoch, latest.seq
                state.ready.set()
                pending, state.pending = state.pending, []
                for message in pending:
                    await self._handle_event(state, message)
        else:
            await state.ready.wait()
            if topic not in self.topics:
                raise ConnectionError("the channel layer is unavailable")
        state.subscribers.add(consumer)

    async def unsubscribe(self, topic: str, consumer: RealtimeConsumer) -> None:
        state = self.topics.get(topic)
        if state is None:
            return
        state.subscribers.discard(consumer)
        if not state.subscribers and state.ready.is_set():
            del self.topics[topic]
            with contextlib.suppress(Exception):
                await self.layer.group_discard(topic_group(topic), self.channel_name)

    # --- delivery ---------------------------------------------------------------------------
    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed; retrying")
                await asyncio.sleep(1)
                continue
            try:
                await self._dispatch(message)
            except Exception:
                logger.exception("hub could not handle %s", message.get("type"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "rt.event":
            state = self.topics.get(message["topic"])
            if state is None:
                return
            if not state.ready.is_set():
                state.pending.append(message)
                return
            async with self._lock:
                await self._handle_event(state, message)
        elif kind == "rt.reauthorize":
            for consumer in list(self.connections):
                if consumer.user_id == message.get("user_id"):
                    spawn(consumer.reauthorize())
        elif kind == "rt.revoke":
            revoked = set(message.get("token_ids", ()))
            for consumer in list(self.connections):
                if consumer.token_id in revoked:
                    spawn(consumer.close_revoked())

    async def _handle_event(self, state: TopicState, message: dict[str, Any]) -> None:
        if message["seq"] is None:  # transient (typing): no offset, no history
            frame = event_frame(state.topic, message["event"], None, message["data"])
            sender = message.get("sender_id")
            self._fan_out(state, None, frame, skip_user=sender)
            return
        epoch, seq = message["epoch"], message["seq"]
        if epoch != state.epoch:  # the topic's history started anew
            state.epoch, state.last_seq = epoch, 0
        if seq <= state.last_seq:
            return
        if seq > state.last_seq + 1:
            await self._fill_gap(state, until=seq - 1)
        await self._deliver(state, StoredEvent(seq, message["event"], message["data"]))

    async def _fill_gap(self, state: TopicState, until: int) -> None:
        replay = await asyncio.to_thread(
            self.history.read_after, state.topic, Offset(state.epoch, state.last_seq)
        )
        if not replay.recovered:
            logger.warning("events of %s fell out of history before delivery", state.topic)
            # Subscribers cannot be made whole: they reconnect and reload (1012 = restart).
            for consumer in list(state.subscribers):
                spawn(consumer.close(code=1012))
            state.epoch, state.last_seq = replay.latest.epoch, replay.latest.seq
            return
        for event in replay.events:
            if event.seq > until:
                break
            await self._deliver(state, event)

    async def _deliver(self, state: TopicState, event: StoredEvent) -> None:
        offset = Offset(state.epoch, event.seq)
        state.last_seq = event.seq
        frame = event_frame(state.topic, event.event, offset, event.data_json)
        self._fan_out(state, offset, frame)

    def _fan_out(
        self, state: TopicState, offset: Offset | None, frame: str, skip_user: int | None = None
    ) -> None:
        # Framed once; each socket gets the same bytes, written without awaiting (see
        # realtime/transport.py), so a socket that does not read holds up no other.
        framed = text_frame(frame.encode())
        self._batch.append((state, offset, frame, framed, skip_user))
        # Set from scheduling until the flush's end is recorded (_flushed): events that come
        # in between join the batch, and _flushed schedules them.
        if self._flush_handle is None:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        loop = asyncio.get_running_loop()
        # Hold the batch while the previous one's cost has not passed since it ended
        # (see FAN_OUT_HOLD_MAX): none when events come slower than the hub writes them.
        hold = self._flushed_at + min(self._flush_cost, FAN_OUT_HOLD_MAX) - loop.time()
        self._flush_handle = (
            loop.call_later(hold, self._flush) if hold > 0 else loop.call_soon(self._flush)
        )

    def _flush(self) -> None:
        """Write the events held since the last flush to their topics' sockets, in the order
        they came: all in this one loop iteration, so the event loop hands each socket's
        frames to the kernel in one write (uvloop writes what a transport was given in an
        iteration at its end)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        batch, self._batch = self._batch, []
        try:
            start = 0
            while start < len(batch):
                # A run: consecutive events of one topic for every subscriber (not transient
                # ones that skip their sender), written to each socket in one write.
                state, _, _, _, skip_user = batch[start]
                end = start + 1
                if skip_user is None:
                    while end < len(batch) and batch[end][0] is state and batch[end][4] is None:
                        end += 1
                run = [(offset, frame, framed) for _, offset, frame, framed, _ in batch[start:end]]
                start = end
                joined = run[0][2] if len(run) == 1 else b"".join(event[2] for event in run)
                for consumer in list(state.subscribers):
                    if skip_user is not None and consumer.user_id == skip_user:
                        continue
                    # Per socket (free while nothing raises): one socket's failure costs no
                    # other subscriber its events.
                    try:
                        consumer.deliver(state.topic, run, joined)
                    except Exception:
                        logger.exception("fan-out of events of %s to a socket failed", state.topic)
        finally:
            # Runs after the iteration's writes: the flush's cost includes the kernel's.
            loop.call_soon(self._flushed, started)

    def _flushed(self, started: float) -> None:
        self._flushed_at = now = asyncio.get_running_loop().time()
        self._flush_cost = now - started
        self._flush_handle = None
        if self._batch:
            # Events that came after the flush, before this callback (the next event of a
            # burst was already queued on the loop): no other flush is scheduled for them.
            self._schedule_flush()

    # --- repair and presence heartbeat ------------------------------------------------------
    async def _sync_loop(self) -> None:
        interval = settings.REALTIME_SYNC_INTERVAL
        heartbeat_every = max(1, int(settings.PRESENCE_TTL / 3 / interval))
        token_check_every = max(1, int(settings.REALTIME_TOKEN_RECHECK_INTERVAL / interval))
        tick = 0
        while True:
            await asyncio.sleep(interval)
            tick += 1
            SOCKETS.set(len(self.connections))
            TOPICS.set(len(self.topics))
            LOOP_TASKS.set(len(asyncio.all_tasks()))
            try:
                await self.sync_once()
                if tick % heartbeat_every == 0:
                    await self._presence_heartbeat()
                if tick % token_check_every == 0:
                    await self.recheck_tokens()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub sync pass failed")

    async def sync_once(self) -> None:
        topics = [topic for topic, state in self.topics.items() if state.ready.is_set()]
        if not topics:
            return
        latest = await asyncio.to_thread(self.history.latest_seqs, topics)
        async with self._lock:
            for topic in topics:
                state = self.topics.get(topic)
                # Not answered: its Redis instance is unreachable (several realtime Redis).
                if state is None or topic not in latest:
                    continue
                seen, state.seen_latest = state.seen_latest, latest[topic]
                # Only what was already there one pass ago: newer events may be in flight.
                if seen is None or seen.seq == 0:
                    continue
                if seen.epoch != state.epoch:  # first events, or the history started anew
                    if latest[topic].epoch != seen.epoch:
                        continue  # what we saw is already stale
                    state.epoch, state.last_seq = seen.epoch, 0
                if seen.seq > state.last_seq:
                    logger.warning("hub repairs %s: %d -> %d", topic, state.last_seq, seen.seq)
                    await self._fill_gap(state, until=seen.seq)

    async def recheck_tokens(self) -> None:
        """Close sockets whose token stopped being valid without this process hearing of it
        (a revocation broadcast lost while Redis was away)."""
        from channels.db import database_sync_to_async

        from backend.accounts.selectors import token_ids_no_longer_valid

        token_ids = [c.token_id for c in self.connections if c.token_id and c.user_id]
        if not token_ids:
            return
        invalid = await database_sync_to_async(token_ids_no_longer_valid)(token_ids)
        for consumer in list(self.connections):
            if consumer.token_id in invalid:
                spawn(consumer.close_revoked())

    async def _sweep_loop(self) -> None:
        """The embedded default's stand-in for the beat job: relay stranded outbox rows."""
        from channels.db import database_sync_to_async

        from realtime.publish import sweep_outbox

        while True:
            await asyncio.sleep(settings.OUTBOX_SWEEP_INTERVAL)
            try:
                await database_sync_to_async(sweep_outbox)()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("in-process outbox sweep failed")

    async def _presence_heartbeat(self) -> None:
        """Keep this process's presence entries alive, and report members whose process
        died: their entries stop being refreshed and expire after PRESENCE_TTL."""
        online = [(c.user_id, c.connection_id) for c in self.connections if c.user_id]
        if online:
            await asyncio.to_thread(self.history.online_refresh, online)
        entries = [
            (topic, consumer.user_id, consumer.connection_id)
            for consumer in self.connections
            if consumer.user_id is not None  # presence only follows authenticated sockets
            for topic in consumer.presence_topics
        ]
        if entries:
            await asyncio.to_thread(self.history.presence_refresh, entries)
        for topic in {topic for topic, _, _ in entries}:
            for user_id in await asyncio.to_thread(self.history.presence_expire, topic):
                await publish_ephemeral(topic, "presence.left", presence_event_data(topic, user_id))


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()
_hub_starting: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def hub_running() -> bool:
    """Whether this process serves sockets (has started a hub)."""
    return bool(_hubs)


async def get_hub() -> Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is not None:
        return hub
    lock = _hub_starting.setdefault(loop, asyncio.Lock())
    async with lock:
        hub = _hubs.get(loop)
        if hub is None:
            hub = Hub()
            await hub.start()
            _hubs[loop] = hub
    return hub
