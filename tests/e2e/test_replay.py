"""Replay with ``since`` over real sockets, and the replay/live seam under concurrent commits."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.e2e.conftest import WS, OpenWS, Publisher, Server, ServerPool, make_user, rename

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(40)]


def seq_of(offset: str) -> int:
    return int(offset.rpartition(":")[2])


def epoch_of(offset: str) -> str:
    return offset.rpartition(":")[0]


async def test_reconnect_with_since_replays_exactly_the_missed_events(
    server: Server, open_ws: OpenWS
) -> None:
    me, issued = await make_user()
    topic = f"user.{me.pk}"
    ws: WS = await open_ws(server, issued.plain_text)
    await ws.subscribe(topic)
    await rename(server, me.pk, issued.plain_text, "r0")
    seen = await ws.recv_event("user.updated")
    assert seen["data"]["name"] == "r0"
    await ws.close()

    for n in range(1, 6):
        await rename(server, me.pk, issued.plain_text, f"r{n}")

    again: WS = await open_ws(server, issued.plain_text)
    answer = await again.subscribe(topic, since=seen["offset"])
    assert answer["type"] == "subscribed" and answer["recovered"] is True, answer
    assert epoch_of(answer["offset"]) == epoch_of(seen["offset"])
    assert seq_of(answer["offset"]) == seq_of(seen["offset"]) + 5
    replayed = [await again.recv() for _ in range(5)]
    assert [f["data"]["name"] for f in replayed] == ["r1", "r2", "r3", "r4", "r5"]
    assert [f["event"] for f in replayed] == ["user.updated"] * 5
    assert [seq_of(f["offset"]) for f in replayed] == [
        seq_of(seen["offset"]) + n for n in range(1, 6)
    ]
    assert replayed[-1]["offset"] == answer["offset"]
    assert await again.nothing(0.5)

    # Then live events continue, right after the replay.
    await rename(server, me.pk, issued.plain_text, "r6")
    live = await again.recv_event("user.updated")
    assert live["data"]["name"] == "r6"
    assert seq_of(live["offset"]) == seq_of(answer["offset"]) + 1


async def test_since_from_an_empty_topic_replays_its_first_events(
    server: Server, open_ws: OpenWS
) -> None:
    me, issued = await make_user()
    topic = f"user.{me.pk}"
    ws: WS = await open_ws(server, issued.plain_text)
    first = await ws.subscribe(topic)
    await ws.close()
    for n in range(2):
        await rename(server, me.pk, issued.plain_text, f"e{n}")
    again: WS = await open_ws(server, issued.plain_text)
    answer = await again.subscribe(topic, since=first["offset"])
    assert answer["recovered"] is True, (first, answer)
    names = [(await again.recv())["data"]["name"] for _ in range(2)]
    assert names == ["e0", "e1"]


@pytest.mark.parametrize("kind", ["wrong-epoch", "newer-than-latest"])
async def test_unusable_since_is_not_recovered_and_replays_nothing(
    server: Server, open_ws: OpenWS, kind: str
) -> None:
    me, issued = await make_user()
    topic = f"user.{me.pk}"
    ws: WS = await open_ws(server, issued.plain_text)
    await ws.subscribe(topic)
    for n in range(3):
        await rename(server, me.pk, issued.plain_text, f"w{n}")
    last = None
    for _ in range(3):
        last = await ws.recv_event("user.updated")
    assert last is not None
    await ws.close()

    since = (
        "zzz:3"
        if kind == "wrong-epoch"
        else f"{epoch_of(last['offset'])}:{seq_of(last['offset']) + 100}"
    )
    again: WS = await open_ws(server, issued.plain_text)
    answer = await again.subscribe(topic, since=since)
    assert answer["type"] == "subscribed", answer
    assert answer["recovered"] is False, answer
    assert answer["offset"] == last["offset"]
    assert await again.nothing(0.5)
    # The subscription is live all the same.
    await rename(server, me.pk, issued.plain_text, "after")
    live = await again.recv_event("user.updated")
    assert live["data"]["name"] == "after"


async def reconnecting_reader(
    servers: list[Server],
    open_ws: OpenWS,
    token: str,
    topic: str,
    start_offset: str,
    last_name: str,
    rng: random.Random,
    deadline: float,
) -> tuple[list[str], list[str], int]:
    """Reconnect over and over, each time with ``since`` = the last offset seen.

    Returns the names seen, their offsets, and how many connections it took.
    """
    loop = asyncio.get_running_loop()
    names: list[str] = []
    offsets: list[str] = []
    last_offset = start_offset
    connections = 0
    while loop.time() < deadline:
        server = servers[connections % len(servers)]
        connections += 1
        ws: WS = await open_ws(server, token)
        answer = await ws.subscribe(topic, since=last_offset, id=f"s{connections}")
        assert answer["type"] == "subscribed" and answer["recovered"] is True, answer
        window = loop.time() + rng.uniform(0.05, 0.35)
        while (left := window - loop.time()) > 0:
            try:
                frame = await ws.recv(left)
            except TimeoutError:
                break
            assert frame["type"] == "event" and frame["topic"] == topic, frame
            names.append(frame["data"]["name"])
            offsets.append(frame["offset"])
            last_offset = frame["offset"]
        if names and names[-1] == last_name:
            await ws.close()
            break
        if rng.random() < 0.5:
            await ws.close()
        else:
            ws.conn.transport.abort()  # drop the TCP connection: frames in flight are lost
    return names, offsets, connections


async def run_seam(servers: list[Server], open_ws: OpenWS, count: int, seed: int) -> None:
    me, issued = await make_user()
    topic = f"user.{me.pk}"
    ws: WS = await open_ws(servers[0], issued.plain_text)
    start = await ws.subscribe(topic)
    await ws.close()

    wanted = [f"n{n}" for n in range(count)]
    # With several servers, the writes alternate between them too.
    publisher = Publisher(servers, me.pk, issued.plain_text, wanted, pause=0.01)
    publisher.start()
    loop = asyncio.get_running_loop()
    try:
        names, offsets, connections = await reconnecting_reader(
            servers,
            open_ws,
            issued.plain_text,
            topic,
            start["offset"],
            wanted[-1],
            random.Random(seed),
            deadline=loop.time() + 25,
        )
    finally:
        await asyncio.to_thread(publisher.join, 10)
    assert publisher.error is None, publisher.error
    assert connections > 3, "the reader should have reconnected several times"
    duplicates = sorted({n for n in names if names.count(n) > 1})
    missing = [n for n in wanted if n not in names]
    assert not duplicates and not missing, f"duplicates {duplicates}, missing {missing}"
    assert names == wanted
    seqs = [seq_of(o) for o in offsets]
    assert seqs == list(range(seqs[0], seqs[0] + count)), seqs
    assert len({epoch_of(o) for o in offsets}) == 1


async def test_reconnect_seam_under_concurrent_commits(server: Server, open_ws: OpenWS) -> None:
    await run_seam([server], open_ws, count=60, seed=7)


async def test_reconnect_seam_across_two_processes(servers: ServerPool, open_ws: OpenWS) -> None:
    await run_seam([servers.get("main"), servers.get("b")], open_ws, count=60, seed=11)


async def test_events_whose_fan_out_was_lost_are_repaired_from_history(
    server: Server, open_ws: OpenWS
) -> None:
    """What a layer reconnect drops (channels-redis re-subscribes and tells no one): events
    appended to the topic's history whose PUBLISH never reached the server. The hub's sync
    pass (REALTIME_SYNC_INTERVAL=0.5 here) must deliver them, in order, without a reconnect."""
    from realtime.history import get_history
    from realtime.publish import serialize

    me, issued = await make_user()
    topic = f"user.{me.pk}"
    ws: WS = await open_ws(server, issued.plain_text)
    await ws.subscribe(topic)
    await rename(server, me.pk, issued.plain_text, "before")
    before = await ws.recv_event("user.updated")

    def lose(names: list[str]) -> None:
        for name in names:
            get_history().append(topic, "user.updated", serialize({"name": name}))

    # The last events of a quiet topic: only the periodic sync can notice them.
    await asyncio.to_thread(lose, ["lost1", "lost2"])
    repaired = [await ws.recv_event("user.updated", timeout=4) for _ in range(2)]
    assert [f["data"]["name"] for f in repaired] == ["lost1", "lost2"]
    assert [seq_of(f["offset"]) for f in repaired] == [seq_of(before["offset"]) + n for n in (1, 2)]

    # A gap followed by a live event: the live one makes the hub read the gap first.
    await asyncio.to_thread(lose, ["lost3"])
    await rename(server, me.pk, issued.plain_text, "after")
    tail = [await ws.recv_event("user.updated", timeout=4) for _ in range(2)]
    assert [f["data"]["name"] for f in tail] == ["lost3", "after"]
    assert await ws.nothing(1.2)  # and nothing twice
