"""Per-topic event history (offsets, replay) and room presence.

Redis when ``REDIS_URL`` (or ``REALTIME_REDIS_URLS``) is set, a process-local store otherwise
(the embedded default: one process, the in-process channel layer). Both keep the same promise:

* an offset is ``"<epoch>:<seq>"``; ``seq`` grows by one per event within a topic, so a
  reader can tell a gap from a quiet topic; ``epoch`` changes when a topic's history starts
  anew (expired or flushed), so an old offset is never mistaken for a new one;
* the last ``REALTIME_HISTORY_SIZE`` events are kept, and a topic idle for
  ``REALTIME_HISTORY_TTL`` seconds is forgotten whole.

In Redis one Lua script assigns the sequence number and appends to the topic's stream, so
offsets and stream order cannot disagree whichever process publishes. With several realtime
Redis instances (``REALTIME_REDIS_URLS``) a topic's keys all live on one of them, the one that
also carries the topic's fan-out (:func:`topic_shard`), so its offsets, its replay and its
events in flight depend on that one instance only.
"""

from __future__ import annotations

import binascii
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import cast

from django.conf import settings

logger = logging.getLogger(__name__)

# Epochs this server gives out are "0" (nothing published yet) or 12 hex digits; any short
# ASCII word is accepted (an unknown epoch is answered recovered: false, not an error).
# Seqs fit a signed 64-bit integer. re.ASCII: \d must not match "²" or other Unicode digits
# that int() refuses.
_OFFSET = re.compile(r"(?P<epoch>[0-9A-Za-z_-]{1,32}):(?P<seq>\d{1,18})", re.ASCII)


@dataclass(frozen=True)
class Offset:
    epoch: str
    seq: int

    def __str__(self) -> str:
        return f"{self.epoch}:{self.seq}"

    @classmethod
    def parse(cls, text: object) -> Offset | None:
        """An offset of the shape this server gives out; None for anything else."""
        if not isinstance(text, str):
            return None
        match = _OFFSET.fullmatch(text)
        if match is None:
            return None
        return cls(match["epoch"], int(match["seq"]))


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: str
    data_json: str


@dataclass
class Replay:
    latest: Offset
    recovered: bool
    events: list[StoredEvent] = field(default_factory=list)


def topic_group(topic: str) -> str:
    """The channel-layer group every process hosting the topic joins."""
    return f"rt.{topic}"


def topic_shard(topic: str, shard_count: int) -> int:
    """Which of ``shard_count`` realtime Redis instances holds the topic: the one
    channels-redis' pub/sub layer sends the topic's group to (CRC32 of the group's channel
    name on a 4096-slot ring, cut into equal arcs), so history and fan-out share one Redis."""
    if shard_count == 1:
        return 0
    name = f"{settings.CHANNEL_LAYER_PREFIX}__group__{topic_group(topic)}"
    slot = binascii.crc32(name.encode()) & 0xFFF
    return int(slot / (4096 / float(shard_count)))


# The offset of a topic nobody has published to yet.
EMPTY_TOPIC_OFFSET = Offset("0", 0)


def _new_epoch() -> str:
    return uuid.uuid4().hex[:12]


class History:
    """Interface; all methods are synchronous (call them with asyncio.to_thread from async)."""

    # Shared by every process (Redis) or private to this one (memory).
    shared = True

    def append(self, topic: str, event: str, data_json: str) -> Offset:
        raise NotImplementedError

    def latest(self, topic: str) -> Offset:
        raise NotImplementedError

    def latest_seqs(self, topics: list[str]) -> dict[str, Offset]:
        return {topic: self.latest(topic) for topic in topics}

    def read_after(self, topic: str, since: Offset, limit: int | None = None) -> Replay:
        """The events after ``since`` (at most ``limit``, oldest first) and where the topic
        stands; ``recovered`` is false when ``since`` is of another epoch, ahead of the
        topic, or older than what is kept."""
        raise NotImplementedError

    def read_after_many(
        self, reads: list[tuple[str, Offset, int | None]]
    ) -> list[Replay | BaseException]:
        """:meth:`read_after` for each ``(topic, since, limit)``; the socket hub batches the
        replays of a reconnect storm through this."""
        results: list[Replay | BaseException] = []
        for topic, since, limit in reads:
            try:
                results.append(self.read_after(topic, since, limit))
            except Exception as exc:
                results.append(exc)
        return results

    def presence_join(self, topic: str, user_id: int, connection_id: str) -> bool:
        """Record one connection of the user; True when it is the user's first."""
        raise NotImplementedError

    def presence_leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        """Forget one connection; True when the user has no other connection left."""
        raise NotImplementedError

    def presence_refresh(self, entries: list[tuple[str, int, str]]) -> None:
        raise NotImplementedError

    def presence_expire(self, topic: str) -> list[int]:
        """Drop connections whose heartbeat stopped (a dead process); the users left."""
        raise NotImplementedError

    def presence_list(self, topic: str) -> list[int]:
        raise NotImplementedError

    # Who is online, whatever topics: one entry per authenticated connection.
    def online_add(self, user_id: int, connection_id: str) -> None:
        raise NotImplementedError

    def online_remove(self, user_id: int, connection_id: str) -> None:
        raise NotImplementedError

    def online_remove_many(self, entries: list[tuple[int, str]]) -> None:
        for user_id, connection_id in entries:
            self.online_remove(user_id, connection_id)

    def online_refresh(self, entries: list[tuple[int, str]]) -> None:
        raise NotImplementedError

    def online_users(self) -> set[int]:
        raise NotImplementedError

    def ping(self) -> bool:
        return True


class MemoryHistory(History):
    """Process-local history for the embedded default."""

    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, tuple[str, int, deque[StoredEvent], float]] = {}
        self._presence: dict[str, dict[str, tuple[int, float]]] = {}
        self._online: dict[str, tuple[int, float]] = {}

    def _state(self, topic: str) -> tuple[str, int, deque[StoredEvent], float]:
        state = self._topics.get(topic)
        if state is None or time.monotonic() - state[3] > settings.REALTIME_HISTORY_TTL:
            state = (
                _new_epoch(),
                0,
                deque(maxlen=settings.REALTIME_HISTORY_SIZE),
                time.monotonic(),
            )
            self._topics[topic] = state
        return state

    def append(self, topic: str, event: str, data_json: str) -> Offset:
        with self._lock:
            epoch, seq, events, _ = self._state(topic)
            seq += 1
            events.append(StoredEvent(seq, event, data_json))
            self._topics[topic] = (epoch, seq, events, time.monotonic())
            return Offset(epoch, seq)

    def latest(self, topic: str) -> Offset:
        with self._lock:
            epoch, seq, _, _ = self._state(topic)
            return Offset(epoch, seq)

    def read_after(self, topic: str, since: Offset, limit: int | None = None) -> Replay:
        with self._lock:
            epoch, seq, events, _ = self._state(topic)
            return _replay(Offset(epoch, seq), since, list(events), limit)

    def presence_join(self, topic: str, user_id: int, connection_id: str) -> bool:
        with self._lock:
            members = self._presence.setdefault(topic, {})
            first = user_id not in _live_users(members)
            members[connection_id] = (user_id, time.time() + settings.PRESENCE_TTL)
            return first

    def presence_leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        with self._lock:
            members = self._presence.setdefault(topic, {})
            if members.pop(connection_id, None) is None:
                return False
            return user_id not in _live_users(members)

    def presence_expire(self, topic: str) -> list[int]:
        with self._lock:
            members = self._presence.get(topic, {})
            now = time.time()
            expired = {c: u for c, (u, expires) in members.items() if expires <= now}
            for connection_id in expired:
                del members[connection_id]
            return sorted(set(expired.values()) - _live_users(members))

    def presence_refresh(self, entries: list[tuple[str, int, str]]) -> None:
        with self._lock:
            for topic, user_id, connection_id in entries:
                self._presence.setdefault(topic, {})[connection_id] = (
                    user_id,
                    time.time() + settings.PRESENCE_TTL,
                )

    def presence_list(self, topic: str) -> list[int]:
        with self._lock:
            return sorted(_live_users(self._presence.get(topic, {})))

    def online_add(self, user_id: int, connection_id: str) -> None:
        with self._lock:
            self._online[connection_id] = (user_id, time.time() + settings.PRESENCE_TTL)

    def online_remove(self, user_id: int, connection_id: str) -> None:
        with self._lock:
            self._online.pop(connection_id, None)

    def online_refresh(self, entries: list[tuple[int, str]]) -> None:
        expires = time.time() + settings.PRESENCE_TTL
        with self._lock:
            now = time.time()
            self._online = {c: v for c, v in self._online.items() if v[1] > now}
            for user_id, connection_id in entries:
                self._online[connection_id] = (user_id, expires)

    def online_users(self) -> set[int]:
        with self._lock:
            return _live_users(self._online)


def _live_users(members: dict[str, tuple[int, float]]) -> set[int]:
    now = time.time()
    return {user_id for user_id, expires in members.values() if expires > now}


def _replay(
    latest: Offset, since: Offset, events: list[StoredEvent], limit: int | None = None
) -> Replay:
    if since == EMPTY_TOPIC_OFFSET:
        # Subscribed before the topic's first event: everything since is wanted.
        since = Offset(latest.epoch, 0)
    if since.epoch != latest.epoch or since.seq > latest.seq:
        return Replay(latest=latest, recovered=False)
    wanted = [e for e in events if e.seq > since.seq]
    missing_before_history = since.seq < latest.seq and (
        not wanted or wanted[0].seq != since.seq + 1
    )
    if missing_before_history:
        return Replay(latest=latest, recovered=False)
    return Replay(latest=latest, recovered=True, events=wanted[:limit])


# KEYS: meta hash, stream. ARGV: new epoch, max length, ttl seconds, event, data.
_APPEND_SCRIPT = """
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
if seq == 1 then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
  redis.call('DEL', KEYS[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-1', 'e', ARGV[4], 'd', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {epoch, seq}
"""

# Presence: one sorted set per topic, members "<user>:<connection>", scored by expiry time.
# Expired members are removed only by the expiry script, which reports who left with them.
# KEYS: presence zset. ARGV: member, expiry score, now, "<user>:", key ttl.
_PRESENCE_JOIN_SCRIPT = """
local others = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf')) do
  if string.sub(member, 1, string.len(ARGV[4])) == ARGV[4] and member ~= ARGV[1] then
    others = others + 1
  end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return others
"""

# KEYS: presence zset. ARGV: member, now, "<user>:".
_PRESENCE_LEAVE_SCRIPT = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local others = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')) do
  if string.sub(member, 1, string.len(ARGV[3])) == ARGV[3] then others = others + 1 end
end
if removed == 0 then return -1 end
return others
"""

# KEYS: presence zset. ARGV: now. Returns the users whose last connection just expired;
# atomic, so of several processes sweeping the same room exactly one reports each user.
_PRESENCE_EXPIRE_SCRIPT = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #expired == 0 then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local live = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  live[string.match(member, '^(%d+):')] = true
end
local gone, seen = {}, {}
for _, member in ipairs(expired) do
  local user = string.match(member, '^(%d+):')
  if not live[user] and not seen[user] then
    seen[user] = true
    table.insert(gone, user)
  end
end
return gone
"""


def _presence_key_ttl() -> int:
    # Outlives its members long enough for the expiry sweep to report their departure.
    return max(settings.PRESENCE_TTL * 4, 60)


class RedisHistory(History):
    def __init__(self, url: str, prefix: str = "triton:rt") -> None:
        import redis

        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True
        )
        self.prefix = prefix
        self._append = self.client.register_script(_APPEND_SCRIPT)
        self._join = self.client.register_script(_PRESENCE_JOIN_SCRIPT)
        self._leave = self.client.register_script(_PRESENCE_LEAVE_SCRIPT)
        self._expire = self.client.register_script(_PRESENCE_EXPIRE_SCRIPT)

    def _meta(self, topic: str) -> str:
        return f"{self.prefix}:{{{topic}}}:meta"

    def _stream(self, topic: str) -> str:
        return f"{self.prefix}:{{{topic}}}:stream"

    def _presence(self, topic: str) -> str:
        return f"{self.prefix}:{{{topic}}}:presence"

    def _online(self) -> str:
        return f"{self.prefix}:online"

    def append(self, topic: str, event: str, data_json: str) -> Offset:
        epoch, seq = self._append(
            keys=[self._meta(topic), self._stream(topic)],
            args=[
                _new_epoch(),
                settings.REALTIME_HISTORY_SIZE,
                settings.REALTIME_HISTORY_TTL,
                event,
                data_json,
            ],
        )
        return Offset(epoch, int(seq))

    def latest(self, topic: str) -> Offset:
        return self.latest_seqs([topic])[topic]

    def latest_seqs(self, topics: list[str]) -> dict[str, Offset]:
        pipe = self.client.pipeline(transaction=False)
        for topic in topics:
            pipe.hmget(self._meta(topic), "epoch", "seq")
        result = {}
        for topic, (epoch, seq) in zip(topics, pipe.execute(), strict=True):
            # A topic nobody published to yet: an epoch of "0" that the first event replaces.
            result[topic] = Offset(epoch or "0", int(seq or 0))
        return result

    def read_after(self, topic: str, since: Offset, limit: int | None = None) -> Replay:
        pipe = self.client.pipeline(transaction=True)
        pipe.hmget(self._meta(topic), "epoch", "seq")
        pipe.xrange(self._stream(topic), min=f"{since.seq + 1}-0", max="+", count=limit)
        (epoch, seq), entries = pipe.execute()
        latest = Offset(epoch or "0", int(seq or 0))
        events = [
            StoredEvent(int(entry_id.split("-", 1)[0]), fields["e"], fields["d"])
            for entry_id, fields in entries
        ]
        return _replay(latest, since, events, limit)

    def read_after_many(
        self, reads: list[tuple[str, Offset, int | None]]
    ) -> list[Replay | BaseException]:
        # One round trip for all (MULTI/EXEC keeps each topic's position and events
        # consistent), each distinct read once: after a reconnect storm many sockets of a
        # topic ask from the same offset.
        distinct = list(dict.fromkeys(reads))
        pipe = self.client.pipeline(transaction=True)
        for topic, since, limit in distinct:
            pipe.hmget(self._meta(topic), "epoch", "seq")
            pipe.xrange(self._stream(topic), min=f"{since.seq + 1}-0", max="+", count=limit)
        try:
            replies = pipe.execute()
        except Exception as exc:
            return [exc] * len(reads)
        answers: dict[tuple[str, Offset, int | None], Replay] = {}
        for index, read in enumerate(distinct):
            (epoch, seq), entries = replies[2 * index], replies[2 * index + 1]
            latest = Offset(epoch or "0", int(seq or 0))
            events = [
                StoredEvent(int(entry_id.split("-", 1)[0]), fields["e"], fields["d"])
                for entry_id, fields in entries
            ]
            answers[read] = _replay(latest, read[1], events, read[2])
        return [answers[read] for read in reads]

    def presence_join(self, topic: str, user_id: int, connection_id: str) -> bool:
        now = time.time()
        others = self._join(
            keys=[self._presence(topic)],
            args=[
                f"{user_id}:{connection_id}",
                now + settings.PRESENCE_TTL,
                now,
                f"{user_id}:",
                _presence_key_ttl(),
            ],
        )
        return int(others) == 0

    def presence_leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        others = self._leave(
            keys=[self._presence(topic)],
            args=[f"{user_id}:{connection_id}", time.time(), f"{user_id}:"],
        )
        # -1: the entry had already expired, and the expiry sweep reported the departure.
        return int(others) == 0

    def presence_expire(self, topic: str) -> list[int]:
        return [
            int(user) for user in self._expire(keys=[self._presence(topic)], args=[time.time()])
        ]

    def presence_refresh(self, entries: list[tuple[str, int, str]]) -> None:
        if not entries:
            return
        expires = time.time() + settings.PRESENCE_TTL
        pipe = self.client.pipeline(transaction=False)
        for topic, user_id, connection_id in entries:
            pipe.zadd(self._presence(topic), {f"{user_id}:{connection_id}": expires})
            pipe.expire(self._presence(topic), _presence_key_ttl())
        pipe.execute()

    def presence_list(self, topic: str) -> list[int]:
        members = self._live_members(self._presence(topic))
        return sorted({int(member.split(":", 1)[0]) for member in members})

    def online_add(self, user_id: int, connection_id: str) -> None:
        self.online_refresh([(user_id, connection_id)])

    def online_remove(self, user_id: int, connection_id: str) -> None:
        self.client.zrem(self._online(), f"{user_id}:{connection_id}")

    def online_remove_many(self, entries: list[tuple[int, str]]) -> None:
        if entries:
            self.client.zrem(self._online(), *(f"{user}:{conn}" for user, conn in entries))

    def online_refresh(self, entries: list[tuple[int, str]]) -> None:
        if not entries:
            return
        expires = time.time() + settings.PRESENCE_TTL
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(self._online(), {f"{user}:{conn}": expires for user, conn in entries})
        # Members of dead processes: their heartbeat stopped, their score is in the past.
        pipe.zremrangebyscore(self._online(), "-inf", time.time())
        pipe.expire(self._online(), _presence_key_ttl())
        pipe.execute()

    def online_users(self) -> set[int]:
        members = self._live_members(self._online())
        return {int(member.split(":", 1)[0]) for member in members}

    def _live_members(self, key: str) -> list[str]:
        """Members of the sorted set ``key`` whose expiry score is still in the future."""
        members = self.client.zrangebyscore(key, time.time(), "+inf")
        # redis-py types the reply for every decode/withscores mode; with decode_responses
        # and no scores it is a list of str.
        return cast("list[str]", members)

    def ping(self) -> bool:
        return bool(self.client.ping())


class ShardedRedisHistory(History):
    """Topics spread over several Redis instances (:func:`topic_shard`); each topic's keys
    stay on one. Who is online, a set across topics, lives on the first instance."""

    def __init__(self, urls: list[str], prefix: str = "triton:rt") -> None:
        self.shards = [RedisHistory(url, prefix=prefix) for url in urls]

    def shard(self, topic: str) -> RedisHistory:
        return self.shards[topic_shard(topic, len(self.shards))]

    def _by_shard(self, topics: Iterable[str]) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = {}
        for topic in topics:
            grouped.setdefault(topic_shard(topic, len(self.shards)), []).append(topic)
        return grouped

    def append(self, topic: str, event: str, data_json: str) -> Offset:
        return self.shard(topic).append(topic, event, data_json)

    def latest(self, topic: str) -> Offset:
        return self.shard(topic).latest(topic)

    def latest_seqs(self, topics: list[str]) -> dict[str, Offset]:
        """One pipeline per instance (the hub's sync pass asks for every topic it hosts).
        The topics of an unreachable instance are left out: the others' are still repaired."""
        result: dict[str, Offset] = {}
        failed: Exception | None = None
        for index, shard_topics in self._by_shard(topics).items():
            try:
                result.update(self.shards[index].latest_seqs(shard_topics))
            except Exception as exc:
                logger.warning("realtime Redis %d unreachable: %s", index, exc)
                failed = exc
        if failed is not None and not result:
            raise failed
        return result

    def read_after(self, topic: str, since: Offset, limit: int | None = None) -> Replay:
        return self.shard(topic).read_after(topic, since, limit)

    def read_after_many(
        self, reads: list[tuple[str, Offset, int | None]]
    ) -> list[Replay | BaseException]:
        """One pipeline per instance; an unreachable instance fails its own reads only."""
        grouped: dict[int, list[int]] = {}
        for position, (topic, _since, _limit) in enumerate(reads):
            grouped.setdefault(topic_shard(topic, len(self.shards)), []).append(position)
        results: list[Replay | BaseException] = [ConnectionError("not read")] * len(reads)
        for index, positions in grouped.items():
            answers = self.shards[index].read_after_many([reads[p] for p in positions])
            for position, answer in zip(positions, answers, strict=True):
                results[position] = answer
        return results

    def presence_join(self, topic: str, user_id: int, connection_id: str) -> bool:
        return self.shard(topic).presence_join(topic, user_id, connection_id)

    def presence_leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        return self.shard(topic).presence_leave(topic, user_id, connection_id)

    def presence_refresh(self, entries: list[tuple[str, int, str]]) -> None:
        grouped: dict[int, list[tuple[str, int, str]]] = {}
        for entry in entries:
            grouped.setdefault(topic_shard(entry[0], len(self.shards)), []).append(entry)
        for index, shard_entries in grouped.items():
            self.shards[index].presence_refresh(shard_entries)

    def presence_expire(self, topic: str) -> list[int]:
        return self.shard(topic).presence_expire(topic)

    def presence_list(self, topic: str) -> list[int]:
        return self.shard(topic).presence_list(topic)

    def online_add(self, user_id: int, connection_id: str) -> None:
        self.shards[0].online_add(user_id, connection_id)

    def online_remove(self, user_id: int, connection_id: str) -> None:
        self.shards[0].online_remove(user_id, connection_id)

    def online_remove_many(self, entries: list[tuple[int, str]]) -> None:
        self.shards[0].online_remove_many(entries)

    def online_refresh(self, entries: list[tuple[int, str]]) -> None:
        self.shards[0].online_refresh(entries)

    def online_users(self) -> set[int]:
        return self.shards[0].online_users()

    def ping(self) -> bool:
        return all(shard.ping() for shard in self.shards)


@cache
def get_history() -> History:
    urls = settings.REALTIME_REDIS_URLS
    if len(urls) > 1:
        return ShardedRedisHistory(urls, prefix=settings.REALTIME_KEY_PREFIX)
    if urls:
        return RedisHistory(urls[0], prefix=settings.REALTIME_KEY_PREFIX)
    return MemoryHistory()
