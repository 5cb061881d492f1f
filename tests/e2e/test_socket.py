"""One real daphne process: the /ws/v1/ protocol over real TCP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
from channels.db import database_sync_to_async
from websockets.exceptions import ConnectionClosed, InvalidStatus

from backend.messaging.models import Room
from tests.e2e.conftest import WS, OpenWS, Server, ServerPool, make_user, rename, revoke
from tests.factories import RoomFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


async def make_room(*members: object) -> Room:
    return await database_sync_to_async(RoomFactory)(members=list(members))


@pytest.fixture
def tight(servers: ServerPool) -> Server:
    """Short auth timeout and a small subscription cap."""
    return servers.get("tight")


# --- auth ------------------------------------------------------------------------------------
async def test_auth_ok_and_ping(server: Server, open_ws: OpenWS) -> None:
    user, issued = await make_user()
    ws: WS = await open_ws(server)
    assert await ws.auth(issued.plain_text) == {"type": "auth.ok", "user_id": user.pk}
    await ws.ping()


@pytest.mark.parametrize(
    "token",
    [
        "1|nope",
        "garbage",
        "",
        "99999|" + "x" * 40,
        "²|x",
        "1²|x",
        "\u0661|x",  # ARABIC-INDIC DIGIT ONE
        "9" * 30 + "|x",
        "1|" + "x" * 300,
        None,
        7,
        {"id": 1},
    ],
)
async def test_bad_token_closes_4401_at_once(
    server: Server, open_ws: OpenWS, token: object
) -> None:
    await make_user()
    ws: WS = await open_ws(server)
    started = asyncio.get_running_loop().time()
    await ws.send({"type": "auth", "token": token})
    # At once: no error frame first, and long before the auth timeout (10 s, close 4408).
    assert await ws.close_code(timeout=3) == 4401
    assert asyncio.get_running_loop().time() - started < 3


@pytest.mark.parametrize(
    "since",
    ["abc:²", "abc:\u0661\u0662", "abc:" + "9" * 30, "abc:-1", "abc:1.5", "abc", ":1", 12, True],
)
async def test_since_that_is_not_an_offset_answers_bad_request(
    server: Server, open_ws: OpenWS, since: object
) -> None:
    me, issued = await make_user()
    ws: WS = await open_ws(server, issued.plain_text)
    await ws.send({"type": "subscribe", "topic": f"user.{me.pk}", "since": since, "id": "s"})
    answer = await ws.recv()
    assert answer["type"] == "error" and answer["code"] == "bad_request", answer
    assert answer["id"] == "s"
    await ws.ping()


async def test_first_frame_not_auth_closes_4401(server: Server, open_ws: OpenWS) -> None:
    ws: WS = await open_ws(server)
    await ws.send({"type": "ping"})
    assert await ws.close_code() == 4401


async def test_no_auth_frame_times_out_4408(tight: Server, open_ws: OpenWS) -> None:
    ws: WS = await open_ws(tight)
    started = asyncio.get_running_loop().time()
    assert await ws.close_code(timeout=4) == 4408
    assert 0.8 <= asyncio.get_running_loop().time() - started < 3


async def test_auth_in_time_is_not_closed_by_the_auth_timer(tight: Server, open_ws: OpenWS) -> None:
    _, issued = await make_user()
    ws: WS = await open_ws(tight, issued.plain_text)
    assert await ws.nothing(1.5)  # past WS_AUTH_TIMEOUT=1: no close, no frame
    await ws.ping()


# --- origin ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://localhost.evil.example", "file://"]
)
async def test_foreign_origin_is_refused(server: Server, open_ws: OpenWS, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(server, origin=origin)
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("origin", ["localhost", "127.0.0.1", None])
async def test_allowed_origin_and_no_origin_are_accepted(
    server: Server, open_ws: OpenWS, origin: str | None
) -> None:
    _, issued = await make_user()
    header = f"http://{origin}:{server.port}" if origin else None
    ws: WS = await open_ws(server, issued.plain_text, origin=header)
    await ws.ping()


# --- subscribe / authorize -------------------------------------------------------------------
async def test_subscribe_matrix(server: Server, open_ws: OpenWS) -> None:
    me, my_token = await make_user(["Customer"])
    other, _ = await make_user(["Customer"])
    admin, admin_token = await make_user(["Admin"])
    mine = await make_room(me, other)
    theirs = await make_room(other)

    ws: WS = await open_ws(server, my_token.plain_text)
    own = await ws.subscribe(f"user.{me.pk}", id="a1")
    assert own["type"] == "subscribed" and own["topic"] == f"user.{me.pk}", own
    assert own["id"] == "a1" and own["recovered"] is True and isinstance(own["offset"], str)

    refused = await ws.subscribe(f"user.{other.pk}", id="a2")
    assert refused["type"] == "error" and refused["code"] == "not_found", refused
    assert refused["id"] == "a2"

    dashboard = await ws.subscribe("dashboard", id=3)
    assert dashboard["type"] == "error" and dashboard["code"] == "forbidden", dashboard
    assert dashboard["id"] == 3

    room = await ws.subscribe(f"room.{mine.pk}", id="a4")
    assert room["type"] == "subscribed" and room["topic"] == f"room.{mine.pk}", room
    assert me.pk in room["presence"]

    not_member = await ws.subscribe(f"room.{theirs.pk}", id="a5")
    assert not_member["type"] == "error" and not_member["code"] == "not_found", not_member

    missing_room = await ws.subscribe("room.987654", id="a6")
    assert missing_room["type"] == "error" and missing_room["code"] == "not_found"
    # A refused room and a missing one must look alike.
    assert not_member["message"].replace(str(theirs.pk), "X") == missing_room["message"].replace(
        "987654", "X"
    )

    for n, malformed in enumerate(["User.1", "user.", "user.0", "user", "dashboard.1", 5, ""]):
        answer = await ws.subscribe(malformed, id=f"m{n}")  # type: ignore[arg-type]
        assert answer["type"] == "error", (malformed, answer)
        assert answer["code"] == "bad_request", (malformed, answer)
    unknown_kind = await ws.subscribe("nosuchkind.1", id="u1")
    assert unknown_kind["type"] == "error" and unknown_kind["code"] in ("not_found", "bad_request")

    bad_since = await ws.subscribe(f"user.{me.pk}", since="not-an-offset", id="s1")
    assert bad_since["type"] == "error" and bad_since["code"] == "bad_request"
    await ws.ping()

    admin_ws: WS = await open_ws(server, admin_token.plain_text)
    granted = await admin_ws.subscribe("dashboard", id="d1")
    assert granted["type"] == "subscribed" and granted["topic"] == "dashboard", granted
    assert "presence" not in granted
    assert admin.pk


async def test_unsubscribe_stops_events(server: Server, open_ws: OpenWS) -> None:
    me, issued = await make_user()
    ws: WS = await open_ws(server, issued.plain_text)
    await ws.subscribe(f"user.{me.pk}")
    await ws.send({"type": "unsubscribe", "topic": f"user.{me.pk}", "id": "u"})
    assert await ws.recv() == {"type": "unsubscribed", "topic": f"user.{me.pk}", "id": "u"}
    await rename(server, me.pk, issued.plain_text, "after-unsubscribe")
    assert await ws.nothing(1.0)


# --- hostile input ---------------------------------------------------------------------------
GARBAGE: list[str | bytes] = [
    "{not json",
    "[1, 2, 3]",
    '"just a string"',
    '{"type": 7}',
    '{"type": "no.such.type"}',
    b"\x00\xff\xfe binary",
    b"",
]


async def test_garbage_frames_get_errors_and_the_socket_lives(
    server: Server, open_ws: OpenWS
) -> None:
    _, issued = await make_user()
    ws: WS = await open_ws(server, issued.plain_text)
    for frame in GARBAGE:
        await ws.send_raw(frame)
        answer = await ws.recv()
        assert answer["type"] == "error", (frame[:40], answer)
        assert answer["code"] == "bad_request", (frame[:40], answer)
        await ws.ping()


@pytest.mark.parametrize("authenticated", [True, False])
@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_frame_over_the_size_limit_closes_1009(
    server: Server, open_ws: OpenWS, authenticated: bool, kind: str
) -> None:
    _, issued = await make_user()
    ws: WS = await open_ws(server, issued.plain_text if authenticated else None)
    # WS_MAX_FRAME_BYTES defaults to 64 KiB.
    oversized = json.dumps({"type": "ping", "pad": "x" * (70 * 1024)})
    with contextlib.suppress(ConnectionClosed):
        await ws.send_raw(oversized if kind == "text" else oversized.encode())
    assert await ws.close_code() == 1009


async def test_frame_at_the_size_limit_is_read(server: Server, open_ws: OpenWS) -> None:
    _, issued = await make_user()
    ws: WS = await open_ws(server, issued.plain_text)
    frame = json.dumps({"type": "ping", "pad": ""})
    await ws.send_raw(json.dumps({"type": "ping", "pad": "x" * (64 * 1024 - len(frame))}))
    assert await ws.recv() == {"type": "pong"}


async def test_flood_closes_4429(server: Server, open_ws: OpenWS) -> None:
    _, issued = await make_user()
    ws: WS = await open_ws(server, issued.plain_text)
    # WS_RATE_BURST defaults to 60 at 20/s: 400 frames sent back to back exceed it.
    try:
        for _ in range(400):
            await ws.send({"type": "ping"})
    except ConnectionClosed:
        pass
    assert await ws.close_code(timeout=5) == 4429


async def test_subscription_cap(tight: Server, open_ws: OpenWS) -> None:
    me, issued = await make_user()
    room_a = await make_room(me)
    room_b = await make_room(me)
    ws: WS = await open_ws(tight, issued.plain_text)
    assert (await ws.subscribe(f"user.{me.pk}", id=1))["type"] == "subscribed"
    assert (await ws.subscribe(f"room.{room_a.pk}", id=2))["type"] == "subscribed"
    over = await ws.subscribe(f"room.{room_b.pk}", id=3)
    assert over["type"] == "error" and over["code"] == "bad_request" and over["id"] == 3, over
    # Re-subscribing to a topic already held does not count against the cap.
    again = await ws.subscribe(f"user.{me.pk}", id=4)
    assert again["type"] == "subscribed", again
    await ws.ping()


# --- live events -----------------------------------------------------------------------------
async def test_live_user_updated_after_commit(server: Server, open_ws: OpenWS) -> None:
    me, issued = await make_user(["Customer"])
    ws: WS = await open_ws(server, issued.plain_text)
    subscribed = await ws.subscribe(f"user.{me.pk}")
    await rename(server, me.pk, issued.plain_text, "Live Name")
    event = await ws.recv_event("user.updated")
    assert event["topic"] == f"user.{me.pk}"
    assert event["data"]["id"] == me.pk and event["data"]["name"] == "Live Name"
    assert event["data"]["roles"] == ["Customer"] and "permissions" in event["data"]
    assert "password" not in json.dumps(event["data"])
    epoch, _, seq = event["offset"].rpartition(":")
    assert (
        int(seq) == int(subscribed["offset"].rpartition(":")[2]) + 1
        or epoch != (subscribed["offset"].rpartition(":")[0])
    )


async def test_typing_reaches_other_members_not_the_sender(server: Server, open_ws: OpenWS) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await make_room(alice, bob)
    a: WS = await open_ws(server, alice_token.plain_text)
    b: WS = await open_ws(server, bob_token.plain_text)
    await a.subscribe(f"room.{room.pk}")
    await b.subscribe(f"room.{room.pk}")
    await a.drain(0.3)
    await b.drain(0.3)

    await a.send({"type": "typing", "room_id": room.pk})
    typing = await b.recv_event("typing")
    assert typing == {
        "type": "event",
        "topic": f"room.{room.pk}",
        "event": "typing",
        "offset": None,
        "data": {"room_id": room.pk, "user_id": alice.pk},
    }
    # The sender gets nothing back: its next frame is the answer to its ping.
    await a.ping()

    outsider, outsider_token = await make_user()
    c: WS = await open_ws(server, outsider_token.plain_text)
    await c.send({"type": "typing", "room_id": room.pk, "id": "t"})
    refused = await c.recv()
    assert refused["type"] == "error" and refused["code"] in ("not_found", "forbidden"), refused
    assert await b.nothing(0.5)
    assert outsider.pk


async def test_presence_joined_and_left(server: Server, open_ws: OpenWS) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await make_room(alice, bob)
    a: WS = await open_ws(server, alice_token.plain_text)
    first = await a.subscribe(f"room.{room.pk}")
    assert first["presence"] == [alice.pk], first

    b: WS = await open_ws(server, bob_token.plain_text)
    second = await b.subscribe(f"room.{room.pk}")
    assert second["presence"] == sorted([alice.pk, bob.pk]), second

    # Alice may first see her own join; Bob's must follow.
    joined, _ = await a.recv_until(
        lambda f: f.get("event") == "presence.joined" and f["data"]["user_id"] == bob.pk
    )
    assert joined["data"] == {"room_id": room.pk, "user_id": bob.pk}
    assert joined["offset"] is not None

    await b.close()
    left = await a.recv_event("presence.left")
    assert left["data"] == {"room_id": room.pk, "user_id": bob.pk}


async def test_second_connection_of_a_member_is_no_new_presence(
    server: Server, open_ws: OpenWS
) -> None:
    alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    room = await make_room(alice, bob)
    a: WS = await open_ws(server, alice_token.plain_text)
    await a.subscribe(f"room.{room.pk}")
    b1: WS = await open_ws(server, bob_token.plain_text)
    await b1.subscribe(f"room.{room.pk}")
    await a.recv_until(
        lambda f: f.get("event") == "presence.joined" and f["data"]["user_id"] == bob.pk
    )
    b2: WS = await open_ws(server, bob_token.plain_text)
    await b2.subscribe(f"room.{room.pk}")
    await b2.close()  # bob is still there through b1
    assert await a.nothing(0.8)
    await b1.close()
    left = await a.recv_event("presence.left")
    assert left["data"]["user_id"] == bob.pk


# --- revocation ------------------------------------------------------------------------------
async def test_revoked_token_closes_its_socket_only(server: Server, open_ws: OpenWS) -> None:
    me, issued = await make_user()
    other, other_issued = await make_user()
    victim: WS = await open_ws(server, issued.plain_text)
    await victim.subscribe(f"user.{me.pk}")
    bystander: WS = await open_ws(server, other_issued.plain_text)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await revoke(server, issued)
    assert await victim.close_code(timeout=2) == 4401
    assert loop.time() - started < 1.0
    await bystander.ping()
    # The revoked token cannot come back.
    again: WS = await open_ws(server)
    await again.send({"type": "auth", "token": issued.plain_text})
    assert await again.close_code() == 4401
    assert other.pk


# --- expiry and slow readers -----------------------------------------------------------------
async def test_token_expiring_while_connected_closes_4401(server: Server, open_ws: OpenWS) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from backend.accounts.models import PersonalAccessToken

    me, issued = await make_user()
    await database_sync_to_async(PersonalAccessToken.objects.filter(pk=issued.token.pk).update)(
        expires_at=timezone.now() + timedelta(seconds=1.5)
    )
    ws: WS = await open_ws(server, issued.plain_text)
    await ws.subscribe(f"user.{me.pk}")
    assert await ws.close_code(timeout=4) == 4401
    again: WS = await open_ws(server)
    await again.send({"type": "auth", "token": issued.plain_text})
    assert await again.close_code() == 4401


@pytest.mark.parametrize("server_name", ["tight-uvicorn", "tight-daphne"])
async def test_reader_that_falls_behind_is_closed(
    servers: ServerPool, server_name: str, open_ws: OpenWS
) -> None:
    """WS_SEND_QUEUE_BYTES=256 KiB on "tight": a client that stops reading while ~7 MB of
    events are published (more than both kernels' socket buffers hold) is closed, not
    buffered for without end; under each supported server (their write paths differ, see
    realtime/transport.py)."""
    from realtime.publish import publish

    tight = servers.get(server_name)

    me, issued = await make_user()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", tight.port))
    sock.setblocking(False)
    # max_queue=1: the client library stops reading from TCP as soon as one frame waits.
    slow: WS = await open_ws(tight, issued.plain_text, sock=sock, max_queue=1)
    await slow.subscribe(f"user.{me.pk}")
    # A reader that keeps up: reads concurrently, and its client library never pauses.
    watcher: WS = await open_ws(tight, issued.plain_text, max_queue=None)
    await watcher.subscribe(f"user.{me.pk}")

    blob = "x" * (50 * 1024)

    def flood() -> None:
        for n in range(150):
            publish(f"user.{me.pk}", "user.updated", {"n": n, "blob": blob})

    async def read_all() -> list[int]:
        return [
            (await watcher.recv_event("user.updated", timeout=10))["data"]["n"] for _ in range(150)
        ]

    log_start = tight.log_size()
    reading = asyncio.create_task(read_all())
    await database_sync_to_async(flood)()
    assert await reading == list(range(150))
    # The close frame waits behind the unread data: a client that reads it late sees 4008;
    # when daphne gives up on the close handshake first, the TCP connection is dropped (1006).
    # Either way the server ended it, and says why.
    received = 0

    async def drain_slow() -> int | None:
        nonlocal received
        with contextlib.suppress(ConnectionClosed):
            while True:
                await slow.conn.recv()
                received += 1
        return slow.conn.close_code

    assert await asyncio.wait_for(drain_slow(), 15) in (4008, 1006)
    assert received < 150
    assert "closing a socket that reads too slowly" in tight.log_text(log_start)
    await watcher.ping()
