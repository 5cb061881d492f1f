"""Reads of the commerce area: filtered in the database, shaped by one function per entity
(the REST answer and the realtime event of an object are the same dict)."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet, prefetch_related_objects

from backend.accounts.models import User
from backend.commerce.models import Invoice, InvoiceTemplate, Order, OrderItem, Product
from backend.core.errors import NotFound
from backend.core.permissions import filter_by_perm, has_perm, require_perm
from backend.core.storage import private_url

# --- products -------------------------------------------------------------------------------


def product_list(*, search: str | None = None) -> QuerySet[Product]:
    products = Product.objects.order_by("id")
    if search:
        products = products.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return products


def product_get(*, product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id).first()
    if product is None:
        raise NotFound(detail="No such product.")
    return product


def product_data(product: Product) -> dict[str, Any]:
    return {
        "id": product.pk,
        "name": product.name,
        "description": product.description,
        "price": product.price,
        "stock": product.stock,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


# --- orders ---------------------------------------------------------------------------------


def _items_in_order() -> Prefetch:
    return Prefetch("items", queryset=OrderItem.objects.order_by("id"))


def _orders_with_items() -> QuerySet[Order]:
    return Order.objects.prefetch_related(_items_in_order())


def with_items(order: Order) -> Order:
    """An order already read (a service's locked row), with its items as ``order_get``
    prefetches them: one query, instead of reading the order again."""
    prefetch_related_objects([order], _items_in_order())
    return order


def order_data(order: Order) -> dict[str, Any]:
    """An order as GET /orders/{id} shows it, and as ``order.status_changed`` carries it.
    ``order.items`` must be prefetched (``order_get``/``order_list_visible`` do)."""
    return {
        "id": order.pk,
        "user_id": order.user_id,
        "status": order.status,
        "total_amount": order.total_amount,
        "items": [
            {
                "id": item.pk,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
            }
            for item in order.items.all()
        ],
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def attach_items(order: Order, items: list[OrderItem]) -> None:
    """Items the caller already holds (just created), as if prefetched (what Django's
    prefetch_related_objects does): ``order.items.all()`` then runs no query."""
    queryset = order.items.all()  # lazy: no query
    queryset._result_cache = list(items)
    queryset._prefetch_done = True  # type: ignore[attr-defined]
    order._prefetched_objects_cache = {"items": queryset}  # type: ignore[attr-defined]


def order_get(*, order_id: int) -> Order | None:
    return _orders_with_items().filter(pk=order_id).first()


def order_visible_to(*, user: User, order_id: int) -> bool:
    """The rule of GET /orders/{id} (and of the ``order.{id}`` topic)."""
    order = Order.objects.filter(pk=order_id).first()
    return order is not None and has_perm(user, "orders.view", order)


def order_get_visible(*, actor: User, order_id: int) -> Order:
    """The owner's order, or anyone's for ``orders.view_any``; 404 otherwise."""
    order = order_get(order_id=order_id)
    # Missing and not visible answer the same, word for word.
    if order is None or not has_perm(actor, "orders.view", order):
        raise NotFound(detail="No such order.")
    return order


def order_list_visible(*, actor: User, status: str | None = None) -> QuerySet[Order]:
    """Own orders; every order for ``orders.view_any``. One query (plus the items')."""
    orders = filter_by_perm(actor, _orders_with_items(), "orders.view").order_by("-id")
    if status:
        orders = orders.filter(status=status)
    return orders


# --- invoices -------------------------------------------------------------------------------


def invoice_template_list() -> QuerySet[InvoiceTemplate]:
    return InvoiceTemplate.objects.order_by("id")


def invoice_template_get(*, template_id: int) -> InvoiceTemplate:
    template = InvoiceTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound(detail="No such invoice template.")
    return template


def invoice_template_list_visible(*, actor: User) -> QuerySet[InvoiceTemplate]:
    require_perm(actor, "invoices.manage")
    return invoice_template_list()


def invoice_template_get_visible(*, actor: User, template_id: int) -> InvoiceTemplate:
    require_perm(actor, "invoices.manage")
    return invoice_template_get(template_id=template_id)


def invoice_pdf_url(invoice: Invoice) -> str | None:
    if invoice.status != "ready" or not invoice.pdf_name:
        return None
    # Expires after STORAGE_LINK_EXPIRY: a presigned S3 GET, or a signed local link.
    return private_url(invoice.pdf_name, download_name=f"invoice-{invoice.pk}.pdf")


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.pk,
        "order_id": invoice.order_id,
        "user_id": invoice.user_id,
        "template_id": invoice.template_id,
        "status": invoice.status,
        "failure_reason": invoice.failure_reason or None,
        "pdf_url": invoice_pdf_url(invoice),
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
    }


def invoice_list_visible(*, actor: User, order_id: int | None = None) -> QuerySet[Invoice]:
    """Invoices of one's own orders; every invoice for ``invoices.manage``."""
    invoices = filter_by_perm(actor, Invoice.objects.all(), "invoices.view").order_by("-id")
    if order_id is not None:
        invoices = invoices.filter(order_id=order_id)
    return invoices


def invoice_get_visible(*, actor: User, invoice_id: int) -> Invoice:
    invoice = Invoice.objects.filter(pk=invoice_id).first()
    if invoice is None or not has_perm(actor, "invoices.view", invoice):
        raise NotFound(detail="No such invoice.")
    return invoice


def invoice_render_context(invoice: Invoice) -> dict[str, Any]:
    """What a template sees: plain dicts of strings and numbers, nothing callable."""
    order = (
        Order.objects.select_related("user")
        .prefetch_related(
            Prefetch("items", queryset=OrderItem.objects.select_related("product").order_by("id"))
        )
        .get(pk=invoice.order_id)
    )
    return {
        "invoice": {
            "id": invoice.pk,
            "created_at": invoice.created_at,
            "template_id": invoice.template_id,
        },
        "order": {
            "id": order.pk,
            "status": order.status,
            "total_amount": order.total_amount,
            "created_at": order.created_at,
            "items": [
                {
                    "id": item.pk,
                    "quantity": item.quantity,
                    "unit_price": item.unit_price,
                    "line_total": item.unit_price * item.quantity,
                    "product": {
                        "id": item.product.pk,
                        "name": item.product.name,
                        "description": item.product.description,
                        "price": item.product.price,
                    },
                }
                for item in order.items.all()
            ],
        },
        "user": {"id": order.user.pk, "name": order.user.name, "email": order.user.email},
    }
