"""The refusal matrix of every commerce endpoint: anonymous / owner / other user / staff.

Refusals answer problem+json and change nothing (``state`` before and after)."""

from __future__ import annotations

from typing import Any

import pytest

from backend.commerce import services
from backend.commerce.models import Invoice, InvoiceTemplate, Order, Product
from tests.factories import InvoiceTemplateFactory, ProductFactory, UserFactory, place_order
from tests.permission_matrix import (
    ANONYMOUS,
    OTHER,
    OWNER,
    STAFF,
    Endpoint,
    World,
    check,
    matrix,
    staff_with,
)

pytestmark = pytest.mark.django_db


def _state() -> Any:
    return (
        list(Product.objects.order_by("id").values_list("id", "name", "price", "stock")),
        list(Order.objects.order_by("id").values_list("id", "status")),
        list(Invoice.objects.order_by("id").values_list("id", "status")),
        list(InvoiceTemplate.objects.order_by("id").values_list("id", "name", "html_template")),
    )


def _expect(anonymous: int, owner: int, other: int, staff: int) -> dict[str, int]:
    return {ANONYMOUS: anonymous, OWNER: owner, OTHER: other, STAFF: staff}


# --- products: owner and other are customers; staff holds products.manage -------------------
PRODUCTS = [
    Endpoint("GET", "/products", _expect(200, 200, 200, 200)),
    Endpoint("GET", "/products/{id}", _expect(200, 200, 200, 200)),
    Endpoint(
        "POST",
        "/products",
        _expect(401, 403, 403, 201),
        body={"name": "New", "price": "1.00", "stock": 1},
    ),
    Endpoint("PATCH", "/products/{id}", _expect(401, 403, 403, 200), body={"stock": 99}),
    Endpoint(
        "PUT",
        "/products/{id}",
        _expect(401, 403, 403, 200),
        body={"name": "Renamed", "price": "2.00", "stock": 3},
    ),
    Endpoint("DELETE", "/products/{id}", _expect(401, 403, 403, 204)),
    # Placing orders needs orders.create, which a products-only staff role lacks.
    Endpoint(
        "POST",
        "/orders",
        _expect(401, 201, 201, 403),
        body={"items": [{"product_id": "{id}", "quantity": 1}]},
        label="POST /orders",
    ),
]


@pytest.fixture
def product_world() -> World:
    return World(
        owner=UserFactory(),
        other=UserFactory(),
        staff=staff_with("products.manage"),
        object_id=ProductFactory(stock=5).pk,
        state=_state,
    )


@pytest.mark.parametrize(("endpoint", "actor"), matrix(PRODUCTS))
def test_products_matrix(product_world: World, endpoint: Endpoint, actor: str) -> None:
    check(product_world, endpoint, actor)


# --- orders: the owner's pending order; staff holds orders.view_any + orders.manage ---------
ORDERS = [
    Endpoint("GET", "/orders", _expect(401, 200, 200, 200)),
    Endpoint("GET", "/orders/{id}", _expect(401, 200, 404, 200)),
    Endpoint("POST", "/orders/{id}/status", _expect(401, 403, 403, 200), body={"status": "paid"}),
    Endpoint("POST", "/orders/{id}/cancel", _expect(401, 200, 404, 403)),
    # Staff may see the order but not invoice it (that is invoices.manage).
    Endpoint("POST", "/invoices", _expect(401, 202, 404, 403), body={"order_id": "{id}"}),
    Endpoint("GET", "/dashboard", _expect(401, 403, 403, 200)),
]


@pytest.fixture
def order_world() -> World:
    owner = UserFactory()
    order = place_order(owner, (ProductFactory(stock=5), 2))
    return World(
        owner=owner,
        other=UserFactory(),
        staff=staff_with("orders.view_any", "orders.manage"),
        object_id=order.pk,
        state=_state,
    )


@pytest.mark.parametrize(("endpoint", "actor"), matrix(ORDERS))
def test_orders_matrix(order_world: World, endpoint: Endpoint, actor: str) -> None:
    check(order_world, endpoint, actor)


# --- invoices: an invoice of the owner's order; staff holds invoices.manage -----------------
INVOICES = [
    Endpoint("GET", "/invoices", _expect(401, 200, 200, 200)),
    Endpoint("GET", "/invoices/{id}", _expect(401, 200, 404, 200)),
    # Still pending: the owner and staff learn it is not ready, the other user nothing.
    Endpoint("GET", "/invoices/{id}/pdf", _expect(401, 409, 404, 409)),
    Endpoint("GET", "/invoice-templates", _expect(401, 403, 403, 200)),
    Endpoint(
        "POST",
        "/invoice-templates",
        _expect(401, 403, 403, 201),
        body={"name": "Mine", "html_template": "<p>{{ order.id }}</p>"},
    ),
]


@pytest.fixture
def invoice_world() -> World:
    owner = UserFactory()
    order = place_order(owner, (ProductFactory(stock=5), 1))
    invoice = services.invoice_request(actor=owner, order_id=order.pk)
    return World(
        owner=owner,
        other=UserFactory(),
        staff=staff_with("invoices.manage"),
        object_id=invoice.pk,
        state=_state,
    )


@pytest.mark.parametrize(("endpoint", "actor"), matrix(INVOICES))
def test_invoices_matrix(invoice_world: World, endpoint: Endpoint, actor: str) -> None:
    check(invoice_world, endpoint, actor)


TEMPLATES = [
    Endpoint("GET", "/invoice-templates/{id}", _expect(401, 403, 403, 200)),
    Endpoint(
        "PATCH", "/invoice-templates/{id}", _expect(401, 403, 403, 200), body={"name": "Renamed"}
    ),
    Endpoint("DELETE", "/invoice-templates/{id}", _expect(401, 403, 403, 204)),
]


@pytest.fixture
def template_world() -> World:
    return World(
        owner=UserFactory(),
        other=UserFactory(roles=["Editor"]),
        staff=staff_with("invoices.manage"),
        object_id=InvoiceTemplateFactory().pk,
        state=_state,
    )


@pytest.mark.parametrize(("endpoint", "actor"), matrix(TEMPLATES))
def test_templates_matrix(template_world: World, endpoint: Endpoint, actor: str) -> None:
    check(template_world, endpoint, actor)
