"""Request and response bodies of /products, /orders, /invoices, /invoice-templates and
/dashboard. Money is a decimal string with two places on the way out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, PlainSerializer, StringConstraints, WithJsonSchema

from api.pagination import PageParams
from api.schemas import NOT_BLANK, Input, SearchTerm, Text
from backend.commerce.models import OrderStatus

MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ProductName = Annotated[str, Text(max_length=200, min_length=1, pattern=NOT_BLANK, trim=True)]
Description = Annotated[str, Text(max_length=10_000)]
TemplateName = Annotated[str, Text(max_length=200, min_length=1, pattern=NOT_BLANK, trim=True)]
TemplateSource = Annotated[str, Text(max_length=200_000, min_length=1)]
# A positive amount with at most two places and ten before the point (DECIMAL(12, 2)).
PRICE_PATTERN = r"^([1-9][0-9]{0,9}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"
# Accepts "12.50", 12.5 or 12 (the service checks again). The document states the string
# form exactly and whole numbers for the number form (a float such as 0.1 + 0.2 would carry
# more places than a price may); the server also takes numbers with two places.
PriceIn = Annotated[
    Decimal,
    Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 9_999_999_999},
                {"type": "string", "pattern": PRICE_PATTERN},
            ],
            "examples": ["12.50"],
        }
    ),
]
Stock = Annotated[int, Field(ge=0, le=2**31 - 1)]


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


Money = Annotated[
    Decimal,
    PlainSerializer(_money, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["12.50"]}),
]


# --- products -------------------------------------------------------------------------------
class ProductOut(Schema):
    id: int
    name: str
    description: str
    price: Money
    stock: int
    created_at: datetime
    updated_at: datetime


class ProductListQuery(PageParams):
    search: SearchTerm | None = Field(None, description="Matches name or description.")


class ProductIn(Input):
    name: ProductName
    description: Description = ""
    price: PriceIn
    stock: Stock = 0


class ProductPatchIn(Input):
    name: ProductName | None = None
    description: Description | None = None
    price: PriceIn | None = None
    stock: Stock | None = None


# --- orders ---------------------------------------------------------------------------------
class OrderLineIn(Input):
    product_id: Id
    # Below 1 is the service's 422 (with the line's loc); bounded here only for the database.
    quantity: Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class OrderIn(Input):
    items: list[OrderLineIn] = Field(..., max_length=100)


class OrderItemOut(Schema):
    id: int
    product_id: int
    quantity: int
    unit_price: Money


class OrderOut(Schema):
    id: int
    user_id: int
    status: Literal["pending", "paid", "shipped", "delivered", "cancelled"]
    total_amount: Money
    items: list[OrderItemOut]
    created_at: datetime
    updated_at: datetime


class OrderListQuery(PageParams):
    status: Literal["pending", "paid", "shipped", "delivered", "cancelled"] | None = None


class OrderStatusIn(Input):
    status: Annotated[str, StringConstraints(max_length=20)] = Field(
        ..., description=f"One of {', '.join(OrderStatus.values)} (legal moves only)."
    )


# --- invoices -------------------------------------------------------------------------------
class InvoiceIn(Input):
    order_id: Id
    template_id: Id | None = None


class InvoiceOut(Schema):
    id: int
    order_id: int
    user_id: int
    template_id: int
    status: Literal["pending", "ready", "failed"]
    pdf_url: str | None = Field(None, description="Time-limited link to the PDF once ready.")
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime


class InvoiceListQuery(PageParams):
    order_id: Id | None = None


class InvoiceTemplateIn(Input):
    name: TemplateName
    html_template: TemplateSource


class InvoiceTemplatePatchIn(Input):
    name: TemplateName | None = None
    html_template: TemplateSource | None = None


class InvoiceTemplateOut(Schema):
    id: int
    name: str
    html_template: str
    created_at: datetime
    updated_at: datetime


# --- dashboard ------------------------------------------------------------------------------
class TopProductOut(Schema):
    product_id: int
    name: str
    quantity: int
    revenue: str


class DashboardOut(Schema):
    orders_today: int
    revenue_today: str
    orders_by_status: dict[str, int]
    top_products: list[TopProductOut]
    users_online: int
    computed_at: str = Field(..., description="ISO 8601 time the figures were computed.")
