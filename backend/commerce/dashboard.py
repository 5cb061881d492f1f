"""The live dashboard: figures, their cache, and throttled ``dashboard.updated`` events.

A change (an order placed, a status moved, a user's socket opened or closed) calls
:func:`figures_changed`. Recomputations are throttled to one per ``COALESCE_SECONDS`` window,
on both edges:

- the first change after a quiet window queues a recomputation at once, so an isolated order
  reaches the page within milliseconds;
- a change made while a recomputation is queued and not started yet needs nothing: that one
  reads the database after the change committed;
- otherwise (a recomputation started less than a window ago) one recomputation is queued for
  the end of that window, and the changes until it starts fold into it.

So a burst of any size costs at most one recomputation per window plus the first, and the
last change of a burst is always counted. The state is two cache keys (Redis, shared by every
process; the process's own memory in the embedded default): ``PENDING_KEY`` (a recomputation
is queued, not started) and ``STARTED_KEY`` (when the last one started, kept one window).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, DecimalField, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from backend.accounts.models import User
from backend.commerce.caching import DASHBOARD_KEY
from backend.commerce.models import Order, OrderItem, OrderStatus
from backend.core.permissions import require_perm

logger = logging.getLogger(__name__)

REFRESH_JOB = "commerce.refresh_dashboard"
COALESCE_SECONDS = 1
PENDING_KEY = "commerce:dashboard:pending"
STARTED_KEY = "commerce:dashboard:started"
# A queued recomputation that has not started within its window and this long is taken for
# lost (its worker died, the queue was purged): the next change queues another. Short, so a
# lost job costs seconds of staleness; a job that was only late costs one more recomputation.
PENDING_GRACE_SECONDS = 2
TOP_PRODUCTS = 5


def _online_count() -> int:
    from realtime.presence import online_user_ids

    try:
        return len(online_user_ids())
    except Exception:  # presence lives in Redis; the figures still stand without it
        logger.warning("online users unavailable", exc_info=True)
        return 0


def compute_figures() -> dict[str, Any]:
    today = timezone.make_aware(datetime.combine(timezone.now().date(), datetime.min.time()))
    money = DecimalField(max_digits=14, decimal_places=2)
    today_orders = Order.objects.filter(created_at__gte=today)
    today_totals = today_orders.aggregate(
        orders=Count("id"),
        revenue=Coalesce(
            Sum("total_amount", filter=~Q(status=OrderStatus.CANCELLED)), 0, output_field=money
        ),
    )
    by_status = {status: 0 for status in OrderStatus.values}
    for row in Order.objects.values("status").annotate(n=Count("id")).order_by():
        by_status[row["status"]] = row["n"]
    top = (
        OrderItem.objects.exclude(order__status=OrderStatus.CANCELLED)
        .values("product_id", "product__name")
        .annotate(
            sold=Sum("quantity"),
            sales=Sum(F("quantity") * F("unit_price"), output_field=money),
        )
        .order_by("-sold", "product_id")[:TOP_PRODUCTS]
    )
    return {
        "orders_today": today_totals["orders"],
        "revenue_today": f"{today_totals['revenue']:.2f}",
        "orders_by_status": by_status,
        "top_products": [
            {
                "product_id": row["product_id"],
                "name": row["product__name"],
                "quantity": row["sold"],
                "revenue": f"{row['sales']:.2f}",
            }
            for row in top
        ],
        "users_online": _online_count(),
    }


def dashboard_get(*, actor: User) -> dict[str, Any]:
    """The cached figures (at most DASHBOARD_CACHE_TTL old), computed on a miss."""
    require_perm(actor, "orders.view_any")
    figures = cache.get(DASHBOARD_KEY)
    if figures is None:
        figures = {**compute_figures(), "computed_at": timezone.now().isoformat()}
        cache.set(DASHBOARD_KEY, figures, timeout=settings.DASHBOARD_CACHE_TTL)
    return figures


def refresh() -> bool:
    """Recompute, cache, and publish ``dashboard.updated`` when the figures changed.
    Returns whether an event was published."""
    from realtime.publish import publish

    # Started before the reads: a change whose commit hook still finds PENDING committed
    # before it was deleted, so before these reads; a later one queues the next window's.
    cache.set(STARTED_KEY, time.time(), timeout=COALESCE_SECONDS)
    cache.delete(PENDING_KEY)
    figures = compute_figures()
    previous = cache.get(DASHBOARD_KEY)
    data = {**figures, "computed_at": timezone.now().isoformat()}
    cache.set(DASHBOARD_KEY, data, timeout=settings.DASHBOARD_CACHE_TTL)
    if previous is not None and {k: v for k, v in previous.items() if k != "computed_at"} == (
        figures
    ):
        return False
    publish("dashboard", "dashboard.updated", data)
    return True


def _schedule_refresh() -> None:
    # PENDING first, STARTED second: refresh() writes them in the other order, so whoever
    # takes PENDING after a recomputation started also sees when it started.
    if not cache.add(PENDING_KEY, 1, timeout=COALESCE_SECONDS + PENDING_GRACE_SECONDS):
        return  # a queued recomputation has not started yet: it will see this change
    started = cache.get(STARTED_KEY)
    delay = 0.0 if started is None else max(0.0, started + COALESCE_SECONDS - time.time())
    task = _refresh_task()
    if task.app.conf.task_always_eager:
        # Embedded default: no broker to hold a delayed job, and the request that committed
        # should not wait for the recomputation: a timer thread runs it.
        timer = threading.Timer(delay, _run_in_thread, args=(task,))
        timer.daemon = True
        timer.start()
    elif delay > 0:
        task.apply_async(countdown=delay)
    else:
        task.apply_async()


def _refresh_task() -> Any:
    # By name, like enqueue_on_commit (domain code never imports workers/); that helper
    # sends on commit and takes no countdown, which the trailing edge needs.
    from backend.core.jobs import registered_task

    return registered_task(REFRESH_JOB)


def _run_in_thread(task: Any) -> None:
    close_old_connections()
    try:
        task.apply()
    finally:
        connection.close()


def figures_changed() -> None:
    """Call inside the writing transaction: once it commits, the dashboard is recomputed at
    once after a quiet second, else at the end of the current second (see the module)."""
    transaction.on_commit(_schedule_refresh, robust=True)


def online_changed(**_: Any) -> None:
    """Receiver of ``realtime.presence.online_changed`` (connected in the app's ready()): a
    socket opened or closed, so users online may have changed. Called outside any
    transaction, on a socket server's worker thread: schedules directly (no on_commit, which
    would open a database connection on that thread) and never raises into the socket."""
    try:
        _schedule_refresh()
    except Exception:
        logger.warning("could not schedule a dashboard refresh", exc_info=True)
