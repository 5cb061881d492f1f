"""group_send_sync: sync code's group sends reach the layer's group members on every layer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.test import override_settings

from realtime import layer as sync_layer
from realtime.layer import PubSubPublisher, group_send_sync
from tests.e2e.conftest import PrivateRedis

MESSAGE: dict[str, Any] = {
    "type": "rt.event",
    "topic": "user.1",
    "epoch": "e1",
    "seq": 7,
    "event": "user.updated",
    "data": '{"name":"Ünïcode"}',
}


async def _received_by_a_member(
    layer: Any, group: str, send: Callable[[str, dict[str, Any]], None] = group_send_sync
) -> dict[str, Any]:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    try:
        # From a thread with no event loop above it, as a frame handler or a job sends.
        await sync_to_async(send, thread_sensitive=False)(group, MESSAGE)
        return dict(await asyncio.wait_for(layer.receive(channel), 5))
    finally:
        await layer.group_discard(group, channel)


async def test_the_pubsub_layer_gets_one_publish_on_the_sync_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = get_channel_layer()
    assert isinstance(layer, RedisPubSubChannelLayer)  # what the test settings configure
    publisher = sync_layer._publisher(layer)
    assert publisher is not None
    published: list[str] = []
    for client in publisher.clients.values():
        real = client.publish

        def counted(channel: str, message: bytes, real: Any = real) -> Any:
            published.append(channel)
            return real(channel, message)

        monkeypatch.setattr(client, "publish", counted)

    group = f"test-{uuid.uuid4().hex}"
    assert await _received_by_a_member(layer, group) == MESSAGE
    assert published == [publisher.naming._get_group_channel_name(group)]  # not async_to_sync


async def test_sends_go_to_the_shard_the_layer_listens_on(
    two_redis: tuple[PrivateRedis, PrivateRedis],
) -> None:
    config = {"hosts": [two_redis[0].url, two_redis[1].url], "prefix": "sync-send-test"}
    layer = RedisPubSubChannelLayer(**config)
    publisher = PubSubPublisher(layer, config)
    groups = [f"group-{n}" for n in range(12)]
    used_shards = {
        publisher.naming._shards.index(
            publisher.naming._get_shard(publisher.naming._get_group_channel_name(group))
        )
        for group in groups
    }
    assert used_shards == {0, 1}  # the groups below cover both instances
    try:
        for group in groups:
            received = await _received_by_a_member(layer, group, publisher.group_send)
            assert received == MESSAGE
    finally:
        await layer.flush()


async def test_other_layers_keep_the_portable_path() -> None:
    # A host given as connection arguments (Sentinel and the like) is left to the layer.
    assert not PubSubPublisher.supports({"hosts": [{"address": settings.REDIS_URL}]})
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    ):
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert sync_layer._publisher(layer) is None
        assert await _received_by_a_member(layer, "portable") == MESSAGE
