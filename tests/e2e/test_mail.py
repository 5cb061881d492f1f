"""Mail over a real server: a recipient's copy of their mailbox and unread counts, kept by
mail.* events, equals fresh reads after every step."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import WS, OpenWS, Server, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


class Mailbox:
    """What a client keeps: its copies by id and the unread counts."""

    def __init__(self) -> None:
        self.mails: dict[int, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}

    def apply(self, event: str, data: dict[str, Any]) -> None:
        if event == "mail.deleted":
            self.mails.pop(data["id"], None)
        else:
            self.mails[data["mail"]["id"]] = data["mail"]
        self.counts = data["counts"]


async def fresh(http: httpx.AsyncClient) -> tuple[dict[int, dict[str, Any]], dict[str, int]]:
    listed = (await http.get("/mails?limit=100")).json()["items"]
    counts = (await http.get("/mails/counts")).json()
    return {mail["id"]: mail for mail in listed}, counts


async def next_mail_event(ws: WS) -> dict[str, Any]:
    frame, _ = await ws.recv_until(
        lambda f: f.get("type") == "event" and f.get("event", "").startswith("mail.")
    )
    return frame


def api(server: Server, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{server.http}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def test_events_keep_the_mailbox_equal_to_fresh_reads(
    server: Server, open_ws: OpenWS
) -> None:
    _alice, alice_token = await make_user()
    bob, bob_token = await make_user()
    bob_ws: WS = await open_ws(server, token=bob_token.plain_text)
    assert (await bob_ws.subscribe(f"user.{bob.pk}"))["type"] == "subscribed"
    box = Mailbox()
    async with (
        api(server, alice_token.plain_text) as alice_api,
        api(server, bob_token.plain_text) as bob_api,
    ):
        ids = []
        for subject in ("first", "second"):
            sent = await alice_api.post(
                "/mails", json={"to": [bob.pk], "subject": subject, "body": "<p>hi</p>"}
            )
            assert sent.status_code == 201, sent.text
            frame = await next_mail_event(bob_ws)
            assert frame["event"] == "mail.received"
            box.apply(frame["event"], frame["data"])
            ids.append(frame["data"]["mail"]["id"])
            assert (box.mails, box.counts) == await fresh(bob_api)
        steps = [
            ("PATCH", f"/mails/{ids[0]}", {"read_flag": True}),
            ("PATCH", f"/mails/{ids[1]}", {"folder": "archive"}),
            ("DELETE", f"/mails/{ids[0]}", None),
            ("PATCH", f"/mails/{ids[0]}", {"read_flag": False}),
            ("DELETE", f"/mails/{ids[0]}", None),
        ]
        for method, path, body in steps:
            answer = await bob_api.request(method, path, json=body)
            assert answer.status_code in (200, 204), answer.text
            frame = await next_mail_event(bob_ws)
            box.apply(frame["event"], frame["data"])
            assert (box.mails, box.counts) == await fresh(bob_api)
    assert list(box.mails) == [ids[1]]
    assert box.counts["archive"] == 1
