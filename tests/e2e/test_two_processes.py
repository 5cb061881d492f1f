"""Two server processes sharing MariaDB and Redis: what one process causes, the other delivers
(two servers, and one server running WEB_CONCURRENCY processes on one port)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
from channels.db import database_sync_to_async

from tests.e2e.conftest import WS, OpenWS, Server, ServerPool, make_user, rename, revoke
from tests.factories import RoomFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


@pytest.fixture
def pair(servers: ServerPool) -> tuple[Server, Server]:
    return servers.get("main"), servers.get("b")


async def test_change_written_through_b_reaches_a_client_on_a(
    pair: tuple[Server, Server], open_ws: OpenWS
) -> None:
    a, b = pair
    me, issued = await make_user()
    on_a: WS = await open_ws(a, issued.plain_text)
    await on_a.subscribe(f"user.{me.pk}")
    await rename(b, me.pk, issued.plain_text, "written via B")
    event = await on_a.recv_event("user.updated")
    assert event["data"]["name"] == "written via B"


async def test_subscribers_on_both_processes_get_the_same_offsets(
    pair: tuple[Server, Server], open_ws: OpenWS
) -> None:
    a, b = pair
    me, issued = await make_user()
    on_a: WS = await open_ws(a, issued.plain_text)
    on_b: WS = await open_ws(b, issued.plain_text)
    await on_a.subscribe(f"user.{me.pk}")
    await on_b.subscribe(f"user.{me.pk}")
    for n in range(5):
        await rename(a if n % 2 else b, me.pk, issued.plain_text, f"x{n}")
    got_a = [await on_a.recv_event("user.updated") for _ in range(5)]
    got_b = [await on_b.recv_event("user.updated") for _ in range(5)]
    assert [f["data"]["name"] for f in got_a] == [f"x{n}" for n in range(5)]
    assert [(f["offset"], f["data"]) for f in got_a] == [(f["offset"], f["data"]) for f in got_b]


async def test_revocation_through_b_closes_the_socket_on_a(
    pair: tuple[Server, Server], open_ws: OpenWS
) -> None:
    a, b = pair
    _, issued = await make_user()
    _, other_issued = await make_user()
    victim: WS = await open_ws(a, issued.plain_text)
    bystander: WS = await open_ws(a, other_issued.plain_text)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await revoke(b, issued)
    assert await victim.close_code(timeout=2) == 4401
    assert loop.time() - started < 1.0
    await bystander.ping()


async def test_typing_and_presence_cross_processes(
    pair: tuple[Server, Server], open_ws: OpenWS
) -> None:
    a, b = pair
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await database_sync_to_async(RoomFactory)(members=[alice, bob])
    topic = f"room.{room.pk}"
    on_a: WS = await open_ws(a, alice_token.plain_text)
    await on_a.subscribe(topic)
    on_b: WS = await open_ws(b, bob_token.plain_text)
    answer = await on_b.subscribe(topic)
    assert answer["presence"] == sorted([alice.pk, bob.pk]), answer

    joined, _ = await on_a.recv_until(
        lambda f: f.get("event") == "presence.joined" and f["data"]["user_id"] == bob.pk
    )
    assert joined["topic"] == topic
    await on_b.drain(0.3)

    await on_b.send({"type": "typing", "room_id": room.pk})
    typing = await on_a.recv_event("typing")
    assert typing["data"] == {"room_id": room.pk, "user_id": bob.pk} and typing["offset"] is None
    await on_b.ping()  # not echoed to its sender on B

    await on_b.close()
    left = await on_a.recv_event("presence.left")
    assert left["data"] == {"room_id": room.pk, "user_id": bob.pk}


async def test_members_of_a_crashed_process_are_reported_left(
    servers: ServerPool, open_ws: OpenWS
) -> None:
    """A process that dies (SIGKILL) cannot say goodbye for its sockets: their presence
    entries expire after PRESENCE_TTL. The other members should then get presence.left."""
    survivor, doomed = servers.get("ttl-a"), servers.get("ttl-b")  # PRESENCE_TTL=2
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await database_sync_to_async(RoomFactory)(members=[alice, bob])
    topic = f"room.{room.pk}"
    on_a: WS = await open_ws(survivor, alice_token.plain_text)
    await on_a.subscribe(topic)
    on_b: WS = await open_ws(doomed, bob_token.plain_text)
    await on_b.subscribe(topic)
    await on_a.recv_until(
        lambda f: f.get("event") == "presence.joined" and f["data"]["user_id"] == bob.pk
    )

    assert doomed.proc is not None
    doomed.proc.kill()
    doomed.proc.wait(5)
    # The members who watched Bob join are told he left once his entries expire...
    left, _ = await on_a.recv_until(
        lambda f: f.get("event") == "presence.left" and f["data"]["user_id"] == bob.pk,
        timeout=8,
    )
    assert left["topic"] == topic
    # ...and the expired entries are gone from the presence list.
    again: WS = await open_ws(survivor, alice_token.plain_text)
    assert (await again.subscribe(topic, id="p"))["presence"] == [alice.pk]


def _server_workers(pid: int) -> list[int]:
    """uvicorn's worker processes: its children that multiprocessing spawned to serve
    (not multiprocessing's resource tracker)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
            if int(stat[1]) == pid and b"spawn_main" in command:
                found.append(int(entry))
    return found


def _established_sockets(pid: int, port: int) -> int:
    """Connections to ``port`` that process ``pid`` holds (its fds against /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
    return held


async def test_web_concurrency_serves_one_port_with_several_processes(
    servers: ServerPool, open_ws: OpenWS
) -> None:
    server = servers.get("two-workers", WEB_CONCURRENCY="2")
    assert server.proc is not None
    workers = _server_workers(server.proc.pid)
    assert len(workers) == 2, workers
    me, issued = await make_user()
    sockets: list[WS] = []
    # The kernel hands each connection to whichever process accepts first.
    while len(sockets) < 40 and not all(_established_sockets(w, server.port) for w in workers):
        ws = await open_ws(server, issued.plain_text)
        await ws.subscribe(f"user.{me.pk}")
        sockets.append(ws)
    assert all(_established_sockets(w, server.port) for w in workers), "one process took all"

    await rename(server, me.pk, issued.plain_text, "seen by both processes")
    for ws in sockets:
        event = await ws.recv_event("user.updated")
        assert event["data"]["name"] == "seen by both processes"
