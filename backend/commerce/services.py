"""Writes of the commerce area. Keyword-only functions named ``<entity>_<action>``; each runs
in one transaction, checks permissions, and publishes its events inside it."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, ProtectedError
from django.utils import timezone

from backend.accounts.models import User
from backend.commerce import dashboard, rendering, selectors
from backend.commerce.caching import catalog_changed, stock_moved
from backend.commerce.models import (
    MONEY_DIGITS,
    MONEY_PLACES,
    Invoice,
    InvoiceStatus,
    InvoiceTemplate,
    Order,
    OrderItem,
    OrderStatus,
    Product,
)
from backend.commerce.seeding import DEFAULT_TEMPLATE_NAME
from backend.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from backend.core.jobs import enqueue_on_commit
from backend.core.permissions import grant_perm, has_perm, require_perm
from backend.core.storage import default_storage
from realtime.publish import publish

logger = logging.getLogger(__name__)

MAX_MONEY = Decimal(10 ** (MONEY_DIGITS - MONEY_PLACES)) - Decimal("0.01")
MAX_STOCK = 2**31 - 1
MAX_QUANTITY = 1_000_000
MAX_ORDER_LINES = 100
CENT = Decimal("0.01")

# Legal moves: new status -> statuses it may come from.
_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    OrderStatus.PAID: (OrderStatus.PENDING,),
    OrderStatus.SHIPPED: (OrderStatus.PAID,),
    OrderStatus.DELIVERED: (OrderStatus.SHIPPED,),
    OrderStatus.CANCELLED: (OrderStatus.PENDING, OrderStatus.PAID),
}


# --- products -------------------------------------------------------------------------------
def _validate_price(price: Decimal) -> Decimal:
    if not isinstance(price, Decimal) or not price.is_finite():
        raise ValidationFailed(
            detail="The price is not a number.",
            errors=[FieldError(loc=["body", "price"], msg="Enter a decimal number.")],
        )
    exponent = price.as_tuple().exponent
    if price <= 0 or price > MAX_MONEY or (isinstance(exponent, int) and exponent < -2):
        raise ValidationFailed(
            detail="The price must be positive, with at most two decimal places.",
            errors=[
                FieldError(
                    loc=["body", "price"],
                    msg=f"Must be between 0.01 and {MAX_MONEY} with at most two places.",
                )
            ],
        )
    return price.quantize(CENT)


def _validate_stock(stock: int) -> int:
    if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
        raise ValidationFailed(
            detail="Stock must be a whole number, never negative.",
            errors=[FieldError(loc=["body", "stock"], msg=f"Must be between 0 and {MAX_STOCK}.")],
        )
    return stock


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed(
            detail="A product needs a name.",
            errors=[FieldError(loc=["body", "name"], msg="Must not be blank.")],
        )
    return name


def product_create(
    *, actor: User, name: str, description: str = "", price: Decimal, stock: int = 0
) -> Product:
    require_perm(actor, "products.manage")
    product = Product(
        name=_validate_name(name),
        description=description,
        price=_validate_price(price),
        stock=_validate_stock(stock),
    )
    with transaction.atomic():
        product.save()
        catalog_changed()
    return product


def product_update(*, actor: User, product_id: int, changes: dict[str, Any]) -> Product:
    require_perm(actor, "products.manage")
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(pk=product_id).first()
        if product is None:
            raise NotFound(detail="No such product.")
        if "name" in changes:
            product.name = _validate_name(changes["name"])
        if "description" in changes:
            product.description = changes["description"]
        if "price" in changes:
            product.price = _validate_price(changes["price"])
        if "stock" in changes:
            product.stock = _validate_stock(changes["stock"])
        product.save()
        catalog_changed()
    return product


def product_delete(*, actor: User, product_id: int) -> None:
    require_perm(actor, "products.manage")
    with transaction.atomic():
        product = Product.objects.filter(pk=product_id).first()
        if product is None:
            raise NotFound(detail="No such product.")
        try:
            product.delete()
        except ProtectedError as exc:
            raise Conflict(detail="The product is part of orders and cannot be deleted.") from exc
        catalog_changed()


# --- orders ---------------------------------------------------------------------------------
def _merged_lines(items: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Quantity per product id (a product named twice counts once, summed); 422 for an
    empty order or a quantity below 1."""
    lines = list(items)
    if not lines:
        raise ValidationFailed(
            detail="An order needs at least one item.",
            errors=[FieldError(loc=["body", "items"], msg="Must not be empty.")],
        )
    if len(lines) > MAX_ORDER_LINES:
        raise ValidationFailed(
            detail=f"An order has at most {MAX_ORDER_LINES} items.",
            errors=[FieldError(loc=["body", "items"], msg="Too many items.")],
        )
    errors = [
        FieldError(loc=["body", "items", n, "quantity"], msg=f"Must be 1 to {MAX_QUANTITY}.")
        for n, (_, quantity) in enumerate(lines)
        if not 1 <= quantity <= MAX_QUANTITY
    ]
    if errors:
        raise ValidationFailed(detail="Every quantity must be at least 1.", errors=errors)
    merged: dict[int, int] = defaultdict(int)
    for product_id, quantity in lines:
        merged[product_id] += quantity
    return dict(merged)


def _unknown_products(product_ids: Iterable[int], lines: list[tuple[int, int]]) -> None:
    known = set(Product.objects.filter(pk__in=list(product_ids)).values_list("pk", flat=True))
    errors = [
        FieldError(loc=["body", "items", n, "product_id"], msg="Unknown product.")
        for n, (product_id, _) in enumerate(lines)
        if product_id not in known
    ]
    if errors:
        raise ValidationFailed(detail="The order names products that do not exist.", errors=errors)


def order_create(*, actor: User, items: Iterable[tuple[int, int]]) -> Order:
    """Take stock for every line or for none, then record the order at the server's prices.

    Each line is one conditional UPDATE (``stock >= quantity``), in ascending product id
    order so two orders never wait on each other's rows in opposite orders (no deadlock);
    a line that finds too little stock rolls the whole transaction back (409), or 422 when
    the order names a product that does not exist. The returned order has its items.
    """
    require_perm(actor, "orders.create")
    lines = list(items)
    quantities = _merged_lines(lines)
    now = timezone.now()
    with transaction.atomic():
        for product_id in sorted(quantities):
            quantity = quantities[product_id]
            taken = Product.objects.filter(pk=product_id, stock__gte=quantity).update(
                stock=F("stock") - quantity, updated_at=now
            )
            if not taken:
                _unknown_products(quantities, lines)  # 422 wins over 409
                raise Conflict(
                    detail=f"Not enough stock for product {product_id}; nothing was taken.",
                    errors=[
                        FieldError(loc=["body", "items", n, "quantity"], msg="Not enough stock.")
                        for n, (pid, _) in enumerate(lines)
                        if pid == product_id
                    ],
                )
        # The rows are locked by this transaction now: these are the prices it sells at.
        prices = dict(Product.objects.filter(pk__in=list(quantities)).values_list("pk", "price"))
        total = sum((prices[pid] * q for pid, q in quantities.items()), Decimal("0.00"))
        if total > MAX_MONEY:
            raise ValidationFailed(
                detail="The order's total is too large.",
                errors=[FieldError(loc=["body", "items"], msg="Total too large.")],
            )
        order = Order.objects.create(user=actor, total_amount=total.quantize(CENT), created_at=now)
        order_items = OrderItem.objects.bulk_create(
            [
                OrderItem(order=order, product_id=pid, quantity=q, unit_price=prices[pid])
                for pid, q in sorted(quantities.items())
            ]
        )
        grant_perm(actor, "orders.view", order)
        stock_moved()
        dashboard.figures_changed()
    if any(item.pk is None for item in order_items):  # a database without RETURNING
        return selectors.order_get(order_id=order.pk) or order
    selectors.attach_items(order, order_items)
    return order


def _return_stock(order: Order) -> None:
    """``order.items`` prefetched (``selectors.with_items``); rows locked in product order."""
    now = timezone.now()
    for item in sorted(order.items.all(), key=lambda item: item.product_id):
        Product.objects.filter(pk=item.product_id).update(
            stock=F("stock") + item.quantity, updated_at=now
        )
    stock_moved()


def _move(order: Order, status: str) -> Order:
    """Apply a legal move to a row locked by the caller, and publish it."""
    if order.status not in _ALLOWED_FROM.get(status, ()):
        raise Conflict(
            detail=f"An order cannot go from {order.status} to {status}.",
            errors=[FieldError(loc=["body", "status"], msg="Illegal status change.")],
        )
    order.status = status
    order.save(update_fields=["status", "updated_at"])
    # The locked row as saved (``save`` set its updated_at), with its items: what a fresh
    # GET shows, and what a cancellation puts back in stock.
    moved = selectors.with_items(order)
    if status == OrderStatus.CANCELLED:
        _return_stock(moved)
    data = selectors.order_data(moved)
    publish(f"order.{moved.pk}", "order.status_changed", data)
    publish(f"user.{moved.user_id}", "order.status_changed", data)
    dashboard.figures_changed()
    return moved


def order_set_status(*, actor: User, order_id: int, status: str) -> Order:
    """``orders.manage``: any legal move (409 otherwise)."""
    require_perm(actor, "orders.manage")
    if status not in OrderStatus.values:
        raise ValidationFailed(
            detail="Unknown status.",
            errors=[FieldError(loc=["body", "status"], msg=f"One of {OrderStatus.values}.")],
        )
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFound(detail="No such order.")
        return _move(order, status)


def order_cancel(*, actor: User, order_id: int) -> Order:
    """The owner cancels a ``pending`` order; the stock goes back."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or not has_perm(actor, "orders.view", order):
            raise NotFound(detail="No such order.")
        if order.user_id != actor.pk:
            raise PermissionDenied(detail="Only the order's owner may cancel it here.")
        if order.status != OrderStatus.PENDING:
            raise Conflict(detail=f"A {order.status} order cannot be cancelled by its owner.")
        return _move(order, OrderStatus.CANCELLED)


# --- invoice templates ----------------------------------------------------------------------
def _checked_template(source: str) -> str:
    try:
        rendering.check_template(source)
    except rendering.TemplateInvalid as exc:
        raise ValidationFailed(
            detail="The template does not compile.",
            errors=[FieldError(loc=["body", "html_template"], msg=str(exc)[:300])],
        ) from exc
    return source


def _template_name_free(name: str, *, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed(
            detail="A template needs a name.",
            errors=[FieldError(loc=["body", "name"], msg="Must not be blank.")],
        )
    taken = InvoiceTemplate.objects.filter(name=name)
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise Conflict(
            detail="A template with this name exists.",
            errors=[FieldError(loc=["body", "name"], msg="Name taken.")],
        )
    return name


def invoice_template_create(*, actor: User, name: str, html_template: str) -> InvoiceTemplate:
    require_perm(actor, "invoices.manage")
    return InvoiceTemplate.objects.create(
        name=_template_name_free(name), html_template=_checked_template(html_template)
    )


def invoice_template_update(
    *, actor: User, template_id: int, changes: dict[str, Any]
) -> InvoiceTemplate:
    require_perm(actor, "invoices.manage")
    with transaction.atomic():
        template = InvoiceTemplate.objects.select_for_update().filter(pk=template_id).first()
        if template is None:
            raise NotFound(detail="No such invoice template.")
        if "name" in changes:
            template.name = _template_name_free(changes["name"], exclude_id=template.pk)
        if "html_template" in changes:
            template.html_template = _checked_template(changes["html_template"])
        template.save()
    return template


def invoice_template_delete(*, actor: User, template_id: int) -> None:
    require_perm(actor, "invoices.manage")
    template = InvoiceTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise NotFound(detail="No such invoice template.")
    try:
        template.delete()
    except ProtectedError as exc:
        raise Conflict(detail="Invoices use this template; it cannot be deleted.") from exc


# --- invoices -------------------------------------------------------------------------------
def _template_for(template_id: int | None) -> InvoiceTemplate:
    if template_id is not None:
        template = InvoiceTemplate.objects.filter(pk=template_id).first()
        if template is None:
            raise ValidationFailed(
                detail="No such invoice template.",
                errors=[FieldError(loc=["body", "template_id"], msg="Unknown template.")],
            )
        return template
    template = (
        InvoiceTemplate.objects.filter(name=DEFAULT_TEMPLATE_NAME).first()
        or InvoiceTemplate.objects.order_by("id").first()
    )
    if template is None:
        raise Conflict(detail="There is no invoice template; create one first.")
    return template


def invoice_request(*, actor: User, order_id: int, template_id: int | None = None) -> Invoice:
    """202: a pending invoice; the job ``commerce.render_invoice`` renders it."""
    order = Order.objects.filter(pk=order_id).first()
    may_invoice = order is not None and (
        order.user_id == actor.pk or has_perm(actor, "invoices.manage")
    )
    if not may_invoice:
        # Someone who may see the order learns they may not invoice it; others, nothing.
        if order is None or not has_perm(actor, "orders.view", order):
            raise NotFound(detail="No such order.")
        raise PermissionDenied(detail="Only the order's owner or invoices.manage.")
    assert order is not None
    template = _template_for(template_id)
    with transaction.atomic():
        invoice = Invoice.objects.create(order=order, user_id=order.user_id, template=template)
        grant_perm(order.user, "invoices.view", invoice)
        enqueue_on_commit("commerce.render_invoice", invoice_id=invoice.pk)
    return invoice


def invoice_pdf_name(invoice: Invoice) -> str:
    """Deterministic per invoice: a redelivered job overwrites, never adds, a file."""
    return f"invoices/{invoice.pk}-{invoice.created_at:%Y%m%d%H%M%S%f}.pdf"


def _finish(invoice_id: int, event: str, **fields: Any) -> bool:
    """Conditional transition out of ``pending``; False when another run got there first."""
    with transaction.atomic():
        moved = Invoice.objects.filter(pk=invoice_id, status=InvoiceStatus.PENDING).update(
            updated_at=timezone.now(), **fields
        )
        if moved:
            invoice = Invoice.objects.get(pk=invoice_id)
            publish(f"user.{invoice.user_id}", event, selectors.invoice_data(invoice))
    return bool(moved)


def invoice_fail(*, invoice_id: int, reason: str) -> bool:
    logger.warning("invoice failed", extra={"invoice_id": invoice_id, "reason": reason})
    return _finish(
        invoice_id, "invoice.failed", status=InvoiceStatus.FAILED, failure_reason=reason[:500]
    )


def invoice_render(*, invoice_id: int, pdf_timeout: float = 30.0) -> str | None:
    """Render a pending invoice to PDF, store it, mark it ready. Idempotent: a finished
    invoice is left alone; a rerun overwrites the same storage name. A template that cannot
    render fails the invoice; OSError (wkhtmltopdf, storage) propagates for a retry.
    Returns the invoice's status, None when it does not exist."""
    invoice = Invoice.objects.select_related("template").filter(pk=invoice_id).first()
    if invoice is None:
        return None
    if invoice.status != InvoiceStatus.PENDING:
        return invoice.status
    try:
        html = rendering.render_html(
            invoice.template.html_template, selectors.invoice_render_context(invoice)
        )
    except rendering.TemplateInvalid as exc:
        invoice_fail(invoice_id=invoice_id, reason=f"template error: {exc}")
        return InvoiceStatus.FAILED
    pdf = rendering.render_pdf(html, timeout=pdf_timeout)
    name = invoice_pdf_name(invoice)
    storage = default_storage()
    if storage.exists(name):  # an earlier run of this job got this far
        storage.delete(name)
    saved = storage.save(name, ContentFile(pdf))
    if saved != name:  # a concurrent run wrote the name first: keep one file
        storage.delete(saved)
    _finish(invoice_id, "invoice.ready", status=InvoiceStatus.READY, pdf_name=name)
    return Invoice.objects.values_list("status", flat=True).get(pk=invoice_id)
