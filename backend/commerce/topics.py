"""``order.{id}`` (whoever may GET the order) and ``dashboard`` (``orders.view_any``)."""

from __future__ import annotations

from backend.accounts.models import User
from backend.commerce.selectors import order_visible_to
from backend.core.permissions import has_perm
from realtime.topics import TopicKind, register_topic_kind


def _authorize_order(user: User, order_id: int | None) -> bool:
    # Same rule as GET /orders/{id}; a missing order and a hidden one both answer not_found.
    return order_id is not None and order_visible_to(user=user, order_id=order_id)


def _authorize_dashboard(user: User, _: int | None) -> bool:
    return has_perm(user, "orders.view_any")


register_topic_kind(TopicKind(name="order", authorize=_authorize_order))
register_topic_kind(
    TopicKind(
        name="dashboard", authorize=_authorize_dashboard, has_id=False, refuse_as_not_found=False
    )
)
