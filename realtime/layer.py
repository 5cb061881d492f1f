"""Group sends from sync code: the on-commit relays and the control broadcasts.

``async_to_sync(layer.group_send)`` hops to an event loop for each call. From a thread with
no loop above it (the sockets' frame handlers, Celery jobs) asgiref starts a new event loop,
and channels-redis' pub/sub layer builds a connection pool and a TCP connection for every new
loop: 4-5 % of a loaded server's CPU in the end-to-end profile (docs/benchmarks.md). With that
layer a group send is one ``PUBLISH``, so it goes out on a process-wide sync Redis client,
with the layer's own serializer, group channel names and shards. Any other layer (in-memory,
channels-redis' list-based one, a Sentinel host) keeps the portable path.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from django.conf import settings


class PubSubPublisher:
    """``group_send`` of a channels-redis pub/sub layer, as one sync ``PUBLISH``."""

    def __init__(self, layer: RedisPubSubChannelLayer, config: dict[str, Any]) -> None:
        self.layer = layer
        # A loop layer for its naming and sharding only: building one opens no connection.
        self.naming = RedisPubSubLoopLayer(channel_layer=layer, **config)
        self.clients = {
            id(shard): redis.Redis.from_url(shard.host["address"]) for shard in self.naming._shards
        }

    @staticmethod
    def supports(config: dict[str, Any]) -> bool:
        """Hosts given as URLs (what the settings write); Sentinel and the like stay portable."""
        hosts = config.get("hosts") or []
        return bool(hosts) and all(isinstance(host, str) for host in hosts)

    def group_send(self, group: str, message: dict[str, Any]) -> None:
        channel = self.naming._get_group_channel_name(group)
        client = self.clients[id(self.naming._get_shard(channel))]
        client.publish(channel, self.layer.serialize(message))


_lock = threading.Lock()
_cached: tuple[object, PubSubPublisher | None] | None = None


def _publisher(layer: object) -> PubSubPublisher | None:
    """The sync publisher of this layer, built once per layer object (tests swap layers)."""
    global _cached
    cached = _cached
    if cached is not None and cached[0] is layer:
        return cached[1]
    with _lock:
        config = cast(dict[str, Any], settings.CHANNEL_LAYERS["default"].get("CONFIG", {}))
        publisher = None
        if isinstance(layer, RedisPubSubChannelLayer) and PubSubPublisher.supports(config):
            publisher = PubSubPublisher(layer, config)
        _cached = (layer, publisher)
    return publisher


def group_send_sync(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to every member of ``group``, from sync code, on any layer."""
    layer = get_channel_layer()
    if layer is None:
        return
    publisher = _publisher(layer)
    if publisher is not None:
        publisher.group_send(group, message)
    else:
        async_to_sync(layer.group_send)(group, message)
