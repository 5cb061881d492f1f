"""Changes of a user's rights made over REST, seen on that user's open sockets.

These use REST only (no fallback): PATCH /api/v1/users/{id} by an admin, as a front end would.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.conftest import WS, OpenWS, Server, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]


async def patch_user(server: Server, token: str, user_id: int, body: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
        answer = await client.patch(
            f"/api/v1/users/{user_id}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def rest(server: Server) -> Server:
    return server


async def test_roles_change_over_rest_is_published_live(rest: Server, open_ws: OpenWS) -> None:
    _, admin_issued = await make_user(["Admin"])
    me, issued = await make_user(["Customer"])
    ws: WS = await open_ws(rest, issued.plain_text)
    await ws.subscribe(f"user.{me.pk}")
    await patch_user(rest, admin_issued.plain_text, me.pk, {"roles": ["Editor"]})
    event = await ws.recv_event("user.updated")
    assert event["data"]["roles"] == ["Editor"]
    assert "products.manage" in event["data"]["permissions"]


async def test_demoted_user_loses_the_dashboard_subscription(rest: Server, open_ws: OpenWS) -> None:
    _, boss_issued = await make_user(["Admin"])
    demoted, issued = await make_user(["Admin"])
    ws: WS = await open_ws(rest, issued.plain_text)
    assert (await ws.subscribe("dashboard", id="d"))["type"] == "subscribed"
    assert (await ws.subscribe(f"user.{demoted.pk}", id="u"))["type"] == "subscribed"

    await patch_user(rest, boss_issued.plain_text, demoted.pk, {"roles": ["Customer"]})
    ended, _ = await ws.recv_until(
        lambda f: f.get("type") == "unsubscribed" and f.get("topic") == "dashboard"
    )
    assert ended.get("reason") == "forbidden", ended
    # Subscribing again is refused now; the user topic stays.
    again = await ws.subscribe("dashboard", id="d2")
    assert again["type"] == "error" and again["code"] == "forbidden", again


async def test_deactivation_over_rest_closes_the_users_sockets(
    rest: Server, open_ws: OpenWS
) -> None:
    _, admin_issued = await make_user(["Admin"])
    me, issued = await make_user(["Customer"])
    ws: WS = await open_ws(rest, issued.plain_text)
    await ws.subscribe(f"user.{me.pk}")
    started = asyncio.get_running_loop().time()
    await patch_user(rest, admin_issued.plain_text, me.pk, {"is_active": False})
    assert await ws.close_code(timeout=2) == 4401
    assert asyncio.get_running_loop().time() - started < 1.5
