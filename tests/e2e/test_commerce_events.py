"""Commerce events over real sockets: order status changes (each event equals a fresh GET),
the order topic's rule, the dashboard, and invoice.ready from a real worker."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from channels.db import database_sync_to_async
from django.conf import settings

import workers.commerce  # noqa: F401  (registers the jobs on the app)
from backend.commerce.models import Product
from tests.e2e.conftest import WS, OpenWS, Server, ServerPool, make_user
from tests.factories import ProductFactory
from workers.celery import app as celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


class Rest:
    def __init__(self, server: Server, token: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        answer = await self.client.request(method, f"/api/v1{path}", json=body)
        assert answer.status_code == status, (method, path, answer.status_code, answer.text)
        return answer.json()


@pytest.fixture
def server(servers: ServerPool) -> Server:
    """A server started after this test's database flush. Flushes between transactional tests
    delete and recreate the content types under new ids; a long-lived server keeps the old
    ids cached, and guardian's object rights (granted to an order's owner) need fresh ones."""
    (fresh,) = servers.start_fresh({"commerce": {}})
    return fresh


@pytest.fixture
def worker() -> Iterator[object]:
    """A real Celery worker (thread) on this run's Redis queue: the servers queue the jobs,
    it runs them against the same database and publishes through the same Redis."""
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(celery_app.conf.task_default_queue)
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
    ) as running:
        yield running


async def test_status_events_equal_a_fresh_get(server: Server, open_ws: OpenWS) -> None:
    owner, owner_token = await make_user()
    _, admin_token = await make_user(["Admin"])
    _, outsider_token = await make_user()
    product = await database_sync_to_async(ProductFactory)(stock=5, price="4.25")
    as_owner = Rest(server, owner_token.plain_text)
    as_admin = Rest(server, admin_token.plain_text)

    order = await as_owner.call(
        "POST", "/orders", {"items": [{"product_id": product.pk, "quantity": 2}]}, status=201
    )
    ws: WS = await open_ws(server, owner_token.plain_text)
    assert (await ws.subscribe(f"order.{order['id']}", id="o"))["type"] == "subscribed"
    assert (await ws.subscribe(f"user.{owner.pk}", id="u"))["type"] == "subscribed"
    outsider: WS = await open_ws(server, outsider_token.plain_text)
    refused = await outsider.subscribe(f"order.{order['id']}", id="x")
    assert refused["type"] == "error" and refused["code"] == "not_found", refused
    staff: WS = await open_ws(server, admin_token.plain_text)
    assert (await staff.subscribe(f"order.{order['id']}", id="s"))["type"] == "subscribed"

    copy = await as_owner.call("GET", f"/orders/{order['id']}")
    assert copy == order
    for status in ("paid", "shipped", "delivered"):
        await as_admin.call("POST", f"/orders/{order['id']}/status", {"status": status})
        events = await ws.recv_events_by_topic(
            "order.status_changed", [f"order.{order['id']}", f"user.{owner.pk}"]
        )
        copy.update(events[f"order.{order['id']}"]["data"])
        fresh = await as_owner.call("GET", f"/orders/{order['id']}")
        assert copy == fresh and fresh["status"] == status
        assert events[f"user.{owner.pk}"]["data"] == fresh
        assert (await staff.recv_event("order.status_changed"))["data"] == fresh

    second = await as_owner.call(
        "POST", "/orders", {"items": [{"product_id": product.pk, "quantity": 3}]}, status=201
    )
    assert (await ws.subscribe(f"order.{second['id']}", id="o2"))["type"] == "subscribed"
    await as_owner.call("POST", f"/orders/{second['id']}/cancel")
    event = await ws.recv_event("order.status_changed", topic=f"order.{second['id']}")
    assert event["data"] == await as_owner.call("GET", f"/orders/{second['id']}")
    assert event["data"]["status"] == "cancelled"
    stock = await database_sync_to_async(lambda: Product.objects.get(pk=product.pk).stock)()
    assert stock == 3
    assert await outsider.nothing()


async def test_dashboard_updates_arrive_live(
    server: Server, open_ws: OpenWS, worker: object
) -> None:
    _, customer_token = await make_user()
    _, admin_token = await make_user(["Admin"])
    product = await database_sync_to_async(ProductFactory)(stock=50, price="10.00")
    as_customer = Rest(server, customer_token.plain_text)
    as_admin = Rest(server, admin_token.plain_text)
    refused = await Rest(server, customer_token.plain_text).client.get("/api/v1/dashboard")
    assert refused.status_code == 403

    ws: WS = await open_ws(server, admin_token.plain_text)
    assert (await ws.subscribe("dashboard", id="d"))["type"] == "subscribed"
    for _ in range(3):
        await as_customer.call(
            "POST", "/orders", {"items": [{"product_id": product.pk, "quantity": 2}]}, status=201
        )
    event = await ws.recv_event("dashboard.updated", timeout=10)
    while event["data"]["orders_today"] < 3:  # a burst may be split over two windows
        event = await ws.recv_event("dashboard.updated", timeout=10)
    figures = event["data"]
    assert figures["orders_today"] == 3 and figures["revenue_today"] == "60.00"
    assert figures["orders_by_status"]["pending"] == 3
    assert figures["top_products"][0] == {
        "product_id": product.pk,
        "name": product.name,
        "quantity": 6,
        "revenue": "60.00",
    }
    assert figures["users_online"] >= 1  # at least the admin's socket
    assert await as_admin.call("GET", "/dashboard") == figures


@pytest.fixture
def media_server(servers: ServerPool) -> Server:
    """A fresh server (see ``server``) reading the MEDIA_ROOT this process's worker writes."""
    (fresh,) = servers.start_fresh({"commerce-media": {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}})
    return fresh


async def test_invoice_ready_arrives_live_and_its_link_serves_the_pdf(
    media_server: Server, open_ws: OpenWS, worker: object
) -> None:
    owner, token = await make_user()
    product = await database_sync_to_async(ProductFactory)(name="Teapot", price="12.00")
    as_owner = Rest(media_server, token.plain_text)
    order = await as_owner.call(
        "POST", "/orders", {"items": [{"product_id": product.pk, "quantity": 1}]}, status=201
    )
    ws: WS = await open_ws(media_server, token.plain_text)
    assert (await ws.subscribe(f"user.{owner.pk}", id="u"))["type"] == "subscribed"

    pending = await as_owner.call("POST", "/invoices", {"order_id": order["id"]}, status=202)
    event = await ws.recv_event("invoice.ready", timeout=30)
    assert event["data"]["id"] == pending["id"] and event["data"]["status"] == "ready"
    link = event["data"]["pdf_url"]
    assert link

    fetched = await as_owner.client.get(link)
    assert fetched.status_code == 200, fetched.text[:300]
    direct = await as_owner.client.get(f"/api/v1/invoices/{pending['id']}/pdf")
    assert direct.status_code == 200 and direct.content == fetched.content
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=fetched.content, capture_output=True, check=True
    ).stdout.decode()
    assert f"Invoice {pending['id']}" in text and "Teapot" in text
