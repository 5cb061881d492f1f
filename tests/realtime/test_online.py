"""realtime.presence.online_user_ids(): users with at least one authenticated socket."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.test import override_settings

from realtime.history import MemoryHistory, RedisHistory, get_history
from realtime.presence import online_user_ids
from tests.factories import UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def poll(condition, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(condition):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_online_while_an_authenticated_socket_is_open(open_socket) -> None:
    alice, bob, carol = [await run_sync(UserFactory) for _ in range(3)]
    a1 = await open_socket(await run_sync(bearer_for, alice))
    a2 = await open_socket(await run_sync(bearer_for, alice))
    await open_socket(await run_sync(bearer_for, bob))
    await open_socket()  # connected, never authenticated: not online
    online = await asyncio.to_thread(online_user_ids)
    assert {alice.pk, bob.pk} <= online
    assert carol.pk not in online
    await a1.close()
    # Alice still has a socket open.
    assert alice.pk in await asyncio.to_thread(online_user_ids)
    await a2.close()
    assert await poll(lambda: alice.pk not in online_user_ids())
    assert bob.pk in await asyncio.to_thread(online_user_ids)


async def test_a_revoked_socket_goes_offline(open_socket) -> None:
    from backend.accounts.tokens import tokens_revoke_for_user

    user = await run_sync(UserFactory)
    socket = await open_socket(await run_sync(bearer_for, user))
    assert user.pk in await asyncio.to_thread(online_user_ids)
    await run_sync(tokens_revoke_for_user, user=user)
    assert await socket.recv_close(timeout=2) == 4401
    await socket.close()  # the server's disconnect, as daphne delivers it after a close
    assert await poll(lambda: user.pk not in online_user_ids())


@pytest.mark.parametrize("history_class", [RedisHistory, MemoryHistory])
def test_entries_of_a_dead_process_expire_and_live_ones_are_refreshed(history_class) -> None:
    from django.conf import settings

    if history_class is RedisHistory:
        history = RedisHistory(settings.REDIS_URL, prefix=f"{settings.REALTIME_KEY_PREFIX}:dead")
        history.client.delete(history._online())
    else:
        history = MemoryHistory()
    with override_settings(PRESENCE_TTL=1):
        history.online_add(1, "dead-process-conn")
        history.online_add(2, "live-process-conn")
        assert history.online_users() == {1, 2}
        # The live process's heartbeat keeps refreshing its socket; the dead one's stops. Both
        # were added together: when the dead one has expired, the live one would have too.
        deadline = time.monotonic() + 5
        while history.online_users() != {2} and time.monotonic() < deadline:
            history.online_refresh([(2, "live-process-conn")])
            time.sleep(0.1)
        assert history.online_users() == {2}


async def test_the_hub_heartbeat_refreshes_its_sockets(open_socket) -> None:
    from realtime.hub import get_hub

    user = await run_sync(UserFactory)
    await open_socket(await run_sync(bearer_for, user))
    history = get_history()
    # As if the entry had expired (the hub was away from Redis): the heartbeat restores it.
    await asyncio.to_thread(
        history.online_remove, user.pk, next(iter((await get_hub()).connections)).connection_id
    )
    assert user.pk not in await asyncio.to_thread(online_user_ids)
    await (await get_hub())._presence_heartbeat()
    assert user.pk in await asyncio.to_thread(online_user_ids)


async def test_online_changed_is_sent_as_authenticated_sockets_open_and_close(
    open_socket,
) -> None:
    from realtime.presence import online_changed

    heard: list[tuple[int, bool]] = []

    def receiver(user_id: int, online: bool, **_: object) -> None:
        heard.append((user_id, online))

    online_changed.connect(receiver, weak=False)
    try:
        user = await run_sync(UserFactory)
        await open_socket()  # never authenticated: nothing to say
        socket = await open_socket(await run_sync(bearer_for, user))
        assert heard == [(user.pk, True)]
        await socket.close()
        assert await poll(lambda: heard == [(user.pk, True), (user.pk, False)])
    finally:
        online_changed.disconnect(receiver)


async def test_online_changed_is_sent_once_per_user_of_a_batch() -> None:
    # A reconnect storm brings a user's sockets back in one batch: the receivers recompute
    # once for them, not once per socket.
    from realtime.hub import _announce_online
    from realtime.presence import online_changed

    heard: list[tuple[int, bool]] = []

    def receiver(user_id: int, online: bool, **_: object) -> None:
        heard.append((user_id, online))

    online_changed.connect(receiver, weak=False)
    try:
        await asyncio.to_thread(
            _announce_online, [(7, "a"), (8, "b"), (7, "c"), (9, "d"), (8, "e")], online=True
        )
        assert heard == [(7, True), (8, True), (9, True)]
        heard.clear()
        await asyncio.to_thread(_announce_online, [(9, "d"), (9, "f")], online=False)
        assert heard == [(9, False)]
    finally:
        online_changed.disconnect(receiver)
