"""The dashboard: its figures, who may read them, and the coalescing of recomputations."""

from __future__ import annotations

import itertools
import json
import math
import time
from datetime import datetime
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from backend.commerce import dashboard
from backend.commerce.models import Order
from realtime.models import OutboxEvent
from tests.api.conftest import check_problem
from tests.conftest import ApiClient
from tests.factories import ProductFactory, UserFactory, bearer_for, place_order
from workers.celery import app as celery_app


def _queued() -> list[dict[str, Any]]:
    """Headers of the jobs waiting in this run's queue on the real Redis broker, oldest
    first (``task``, and ``eta`` for a delayed one)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    raw = client.lrange(celery_app.conf.task_default_queue, 0, -1)
    return [json.loads(message)["headers"] for message in reversed(raw)]


def _queued_jobs() -> list[str]:
    """Names of the jobs waiting in this run's queue."""
    return [headers["task"] for headers in _queued()]


def _seconds_until(eta: str | None) -> float:
    return 0.0 if eta is None else (datetime.fromisoformat(eta) - timezone.now()).total_seconds()


@pytest.fixture
def empty_queue() -> None:
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(celery_app.conf.task_default_queue)
    # A recomputation queued (by another test's socket) before the purge is gone with it.
    cache.delete_many([dashboard.PENDING_KEY, dashboard.STARTED_KEY])


def _change() -> None:
    with transaction.atomic():
        dashboard.figures_changed()


@pytest.mark.django_db(transaction=True)
def test_the_first_change_is_recomputed_at_once_the_next_ones_at_the_end_of_the_second(
    empty_queue: None,
) -> None:
    # Quiet: the first change queues a recomputation to run now (no eta)...
    _change()
    assert [(h["task"], h["eta"]) for h in _queued()] == [("commerce.refresh_dashboard", None)]
    # ...and the changes made before it starts need nothing more: it reads after them.
    for _ in range(20):
        _change()
    assert len(_queued()) == 1

    # The worker starts it (refresh() is the job's body); changes from now on are folded into
    # one recomputation at the end of its window, one second after it started.
    started = time.monotonic()
    dashboard.refresh()
    for _ in range(50):
        _change()
    queued = _queued()
    assert len(queued) == 2, queued
    trailing_in = _seconds_until(queued[1]["eta"])
    assert 0 < trailing_in <= dashboard.COALESCE_SECONDS, queued[1]

    # That one starts at the end of the window; after a quiet second the first change is
    # recomputed at once again.
    dashboard.refresh()
    while cache.get(dashboard.STARTED_KEY) is not None and time.monotonic() - started < 10:
        time.sleep(0.05)
    _change()
    queued = _queued()
    assert len(queued) == 3 and queued[2]["eta"] is None, queued


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
def test_a_stream_of_orders_with_a_worker_is_recomputed_about_once_a_second(
    empty_queue: None,
) -> None:
    """A real worker (thread): orders for about three seconds cost about one recomputation a
    second, the first at once, and the figures end up counting the last order."""
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_prerun

    runs: list[float] = []

    def count(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "name", None) == dashboard.REFRESH_JOB:
            runs.append(time.monotonic())

    task_prerun.connect(count, weak=False)
    buyer = UserFactory()
    product = ProductFactory(stock=10_000, price="1.00")
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False):
            started = time.monotonic()
            placed = 0
            while time.monotonic() - started < 3:
                place_order(buyer, (product, 1))
                placed += 1
                time.sleep(0.02)
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + 15
            while (cache.get(dashboard.DASHBOARD_KEY) or {}).get("orders_today") != placed:
                assert time.monotonic() < deadline, "the last order was never counted"
                time.sleep(0.05)
    finally:
        task_prerun.disconnect(count)
    print(f"{placed} orders in {elapsed:.1f} s: {len(runs)} recomputations")
    assert runs[0] - started < 1, "the first order was not recomputed at once"
    assert 2 <= len(runs) <= math.ceil(elapsed) + 2, (len(runs), elapsed)
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    assert all(gap > 0.8 * dashboard.COALESCE_SECONDS for gap in gaps), gaps


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
