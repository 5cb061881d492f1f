"""Tasks over a real server: a client's copy kept by task.* events equals a fresh GET."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import WS, OpenWS, Server, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


def apply_task_event(copy: dict[int, dict[str, Any]], event: str, data: dict[str, Any]) -> None:
    if event == "task.deleted":
        copy.pop(data["id"], None)
    else:
        copy[data["id"]] = data


async def next_task_event(ws: WS) -> dict[str, Any]:
    frame, _ = await ws.recv_until(
        lambda f: f.get("type") == "event" and f.get("event", "").startswith("task.")
    )
    return frame


async def fresh_tasks(http: httpx.AsyncClient) -> dict[int, dict[str, Any]]:
    answer = await http.get("/api/v1/tasks?limit=100")
    assert answer.status_code == 200, answer.text
    return {task["id"]: task for task in answer.json()["items"]}


async def test_events_keep_a_client_copy_equal_to_fresh_reads(
    server: Server, open_ws: OpenWS
) -> None:
    user, issued = await make_user()
    _other, other_issued = await make_user()
    ws: WS = await open_ws(server, token=issued.plain_text)
    assert (await ws.subscribe(f"user.{user.pk}"))["type"] == "subscribed"
    bystander: WS = await open_ws(server, token=other_issued.plain_text)
    assert (await bystander.subscribe(f"user.{_other.pk}"))["type"] == "subscribed"

    headers = {"Authorization": f"Bearer {issued.plain_text}"}
    copy: dict[int, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=server.http, headers=headers, timeout=10) as http:
        first = (await http.post("/api/v1/tasks", json={"title": "one"})).json()
        second = (
            await http.post("/api/v1/tasks", json={"title": "two", "due_date": "2027-01-02"})
        ).json()
        steps = [
            ("PATCH", f"/api/v1/tasks/{first['id']}", {"completed": True}),
            ("PATCH", f"/api/v1/tasks/{second['id']}", {"title": "two!", "due_date": None}),
            ("PATCH", f"/api/v1/tasks/{first['id']}", {"completed": False}),
            ("DELETE", f"/api/v1/tasks/{second['id']}", None),
        ]
        # The two creations first, then each change: after every event the copy is current.
        for _ in range(2):
            frame = await next_task_event(ws)
            apply_task_event(copy, frame["event"], frame["data"])
        assert copy == await fresh_tasks(http)
        for method, path, body in steps:
            answer = await http.request(method, path, json=body)
            assert answer.status_code in (200, 204), answer.text
            frame = await next_task_event(ws)
            assert frame["topic"] == f"user.{user.pk}"
            apply_task_event(copy, frame["event"], frame["data"])
            assert copy == await fresh_tasks(http)
    assert list(copy) == [first["id"]]
    assert await bystander.nothing(0.3)
