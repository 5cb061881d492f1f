"""The dashboard: its figures, who may read them, and the coalescing of recomputations."""

from __future__ import annotations

import math
import time

import pytest
import redis
from django.conf import settings
from django.db import transaction

from backend.commerce import dashboard
from backend.commerce.models import Order
from realtime.models import OutboxEvent
from tests.api.conftest import check_problem
from tests.conftest import ApiClient
from tests.factories import ProductFactory, UserFactory, bearer_for, place_order
from workers.celery import app as celery_app


def _queued_jobs() -> list[str]:
    """Names of the jobs waiting in this run's queue on the real Redis broker."""
    import json

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    raw = client.lrange(celery_app.conf.task_default_queue, 0, -1)
    return [json.loads(message)["headers"]["task"] for message in raw]


@pytest.fixture
def empty_queue() -> None:
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(celery_app.conf.task_default_queue)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_1000_changes_queues_about_one_recomputation_a_second(
    empty_queue: None,
) -> None:
    """1,000 committed changes (each its own transaction, as 1,000 orders would be)."""
    started = time.monotonic()
    for _ in range(1000):
        with transaction.atomic():
            dashboard.figures_changed()
    elapsed = time.monotonic() - started
    refreshes = _queued_jobs().count("commerce.refresh_dashboard")
    print(f"1000 changes in {elapsed:.2f} s queued {refreshes} recomputations")
    assert 1 <= refreshes <= math.ceil(elapsed) + 1, (refreshes, elapsed)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_real_orders_is_coalesced_too(empty_queue: None) -> None:
    buyer = UserFactory()
    product = ProductFactory(stock=500, price="1.00")
    started = time.monotonic()
    for _ in range(100):
        place_order(buyer, (product, 1))
    elapsed = time.monotonic() - started
    queued = _queued_jobs()
    refreshes = queued.count("commerce.refresh_dashboard")
    print(f"100 orders in {elapsed:.1f} s queued {refreshes} recomputations")
    assert Order.objects.count() == 100
    assert 1 <= refreshes <= math.ceil(elapsed) + 1, (refreshes, elapsed)
    assert set(queued) == {"commerce.refresh_dashboard"}


@pytest.mark.django_db(transaction=True)
def test_refresh_publishes_only_when_the_figures_change() -> None:
    buyer = UserFactory()
    product = ProductFactory(stock=10, price="2.50", name="Kettle")
    place_order(buyer, (product, 2))
    assert dashboard.refresh() is True
    assert dashboard.refresh() is False  # nothing changed
    order = place_order(buyer, (product, 1))
    assert dashboard.refresh() is True
    events = OutboxEvent.objects.filter(topic="dashboard", event="dashboard.updated")
    assert events.count() == 2
    from backend.commerce.services import order_set_status

    order_set_status(actor=UserFactory(roles=["Admin"]), order_id=order.pk, status="cancelled")
    figures = dashboard.compute_figures()
    assert figures["orders_today"] == 2
    assert figures["revenue_today"] == "5.00"  # the cancelled order does not count
    assert figures["orders_by_status"] == {
        "pending": 1,
        "paid": 0,
        "shipped": 0,
        "delivered": 0,
        "cancelled": 1,
    }
    assert figures["top_products"] == [
        {"product_id": product.pk, "name": "Kettle", "quantity": 2, "revenue": "5.00"}
    ]


@pytest.mark.django_db
def test_dashboard_needs_orders_view_any() -> None:
    check_problem(ApiClient().get("/dashboard"), 401)
    for roles in (["Customer"], ["Editor"]):
        check_problem(ApiClient(bearer_for(UserFactory(roles=roles))).get("/dashboard"), 403)
    answer = ApiClient(bearer_for(UserFactory(roles=["Admin"]))).get("/dashboard")
    assert answer.status_code == 200
    assert set(answer.json()) == {
        "orders_today",
        "revenue_today",
        "orders_by_status",
        "top_products",
        "users_online",
        "computed_at",
    }
