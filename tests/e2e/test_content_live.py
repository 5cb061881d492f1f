"""Content events received live by real socket clients of a running server; a client that
applies them to its copy ends up with exactly what a fresh GET shows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import WS, OpenWS, ServerPool, make_user
from tests.e2e.content_servers import fresh_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def _apply_post_event(feed: dict[int, dict[str, Any]], frame: dict[str, Any]) -> None:
    """What a front end does with the posts topic."""
    data = frame["data"]
    if frame["event"] in ("post.published", "post.updated"):
        feed[data["id"]] = data
    elif frame["event"] in ("post.unpublished", "post.deleted"):
        feed.pop(data["id"], None)


async def test_published_feed_follows_live_events(servers: ServerPool, open_ws: OpenWS) -> None:
    server = fresh_server(servers)
    _, author = await make_user(["Editor"])
    _, reader = await make_user(["Customer"])
    auth = {"Authorization": f"Bearer {author.plain_text}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=15) as http:
        ws: WS = await open_ws(server, reader.plain_text)
        subscribed = await ws.subscribe("posts")
        assert subscribed["type"] == "subscribed", subscribed
        initial = (await http.get("/posts?published=true")).json()["items"]
        feed = {post["id"]: post for post in initial}

        async def expect(event: str) -> None:
            _apply_post_event(feed, await ws.recv_event(event, timeout=10, topic="posts"))

        draft = (await http.post("/posts", json={"title": "Draft"}, headers=auth)).json()
        first = await http.post(
            "/posts",
            json={"title": "Live", "body_html": "<p>x<script>1</script></p>", "published": True},
            headers=auth,
        )
        assert first.status_code == 201
        await expect("post.published")
        # A draft is nobody's business: no event came for it before the published one.
        assert draft["id"] not in feed

        await http.post(f"/posts/{draft['id']}/publish", headers=auth)
        await expect("post.published")
        await http.patch(f"/posts/{draft['id']}", json={"title": "Renamed"}, headers=auth)
        await expect("post.updated")
        await http.post(f"/posts/{first.json()['id']}/unpublish", headers=auth)
        await expect("post.unpublished")
        await http.delete(f"/posts/{draft['id']}", headers=auth)
        await expect("post.deleted")

        fresh = (await http.get("/posts?published=true")).json()["items"]
        assert feed == {post["id"]: post for post in fresh}
        # Anonymous readers see the same.
        assert (await http.get("/posts?published=true")).json()["items"] == fresh


async def test_shared_file_arrives_live_and_matches_a_fresh_list(
    servers: ServerPool, open_ws: OpenWS
) -> None:
    server = fresh_server(servers)
    _, owner_token = await make_user(["Customer"])
    colleague, colleague_token = await make_user(["Customer"])
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=15) as http:
        mine = {"Authorization": f"Bearer {owner_token.plain_text}"}
        theirs = {"Authorization": f"Bearer {colleague_token.plain_text}"}
        ws: WS = await open_ws(server, colleague_token.plain_text)
        assert (await ws.subscribe(f"user.{colleague.pk}"))["type"] == "subscribed"
        files = {f["id"]: f for f in (await http.get("/files", headers=theirs)).json()["items"]}
        assert files == {}

        created = await http.post(
            "/files", files={"file": ("notes.txt", b"shared notes\n")}, headers=mine
        )
        assert created.status_code == 201, created.text
        file_id = created.json()["id"]
        shared = await http.post(
            f"/files/{file_id}/share", json={"user_id": colleague.pk}, headers=mine
        )
        assert shared.status_code == 200

        event = await ws.recv_event("file.shared", timeout=10, topic=f"user.{colleague.pk}")
        files[event["data"]["id"]] = event["data"]
        fresh = (await http.get("/files", headers=theirs)).json()["items"]
        assert files == {f["id"]: f for f in fresh}
        download = await http.get(f"/files/{file_id}/download", headers=theirs)
        assert download.content == b"shared notes\n"
