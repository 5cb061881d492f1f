"""The live dashboard: figures, their cache, and coalesced ``dashboard.updated`` events.

A change (order placed, status moved) calls :func:`figures_changed` inside its transaction.
After the commit, the first change of a one-second window wins a Redis ``SET NX EX 1`` gate
and schedules one recomputation a second later; the rest of the window's changes find the
gate taken and do nothing. So a burst of any size costs about one recomputation (and at most
one event) per second, and the last change of a burst is always counted: its window's
recomputation runs after it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, DecimalField, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from backend.accounts.models import User
from backend.commerce.caching import DASHBOARD_GATE_KEY, DASHBOARD_KEY
from backend.commerce.models import Order, OrderItem, OrderStatus
from backend.core.permissions import require_perm

logger = logging.getLogger(__name__)

REFRESH_JOB = "commerce.refresh_dashboard"
COALESCE_SECONDS = 1
TOP_PRODUCTS = 5


def _online_count() -> int:
    from realtime.presence import online_user_ids

    try:
        return len(online_user_ids())
    except Exception:  # presence lives in Redis; the figures still stand without it
        logger.warning("online users unavailable", exc_info=True)
        return 0


def compute_figures() -> dict[str, Any]:
    today = timezone.make_aware(datetime.combine(timezone.now().date(), time.min))
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
    if not cache.add(DASHBOARD_GATE_KEY, 1, timeout=COALESCE_SECONDS):
        return  # a recomputation is already due within the second
    task = _refresh_task()
    if task.app.conf.task_always_eager:
        # Embedded default: no broker to hold a delayed job; a timer thread stands in.
        timer = threading.Timer(COALESCE_SECONDS, _run_in_thread, args=(task,))
        timer.daemon = True
        timer.start()
    else:
        task.apply_async(countdown=COALESCE_SECONDS)


def _refresh_task() -> Any:
    # By name, like enqueue_on_commit (domain code never imports workers/); that helper takes
    # no countdown, which the coalescing needs.
    from celery import current_app

    app = current_app._get_current_object()
    if REFRESH_JOB not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[REFRESH_JOB]


def _run_in_thread(task: Any) -> None:
    close_old_connections()
    try:
        task.apply()
    finally:
        connection.close()


def figures_changed() -> None:
    """Call inside the writing transaction; at most one recomputation per second follows."""
    transaction.on_commit(_schedule_refresh, robust=True)
