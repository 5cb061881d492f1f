"""/products, /orders, /invoices, /invoice-templates and /dashboard. Thin: parse, call a
service or selector, shape. The catalog reads answer from the cache."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from ninja import Query, Router, Status
from ninja.responses import NinjaJSONEncoder

from api.commerce.schemas import (
    DashboardOut,
    InvoiceIn,
    InvoiceListQuery,
    InvoiceOut,
    InvoiceTemplateIn,
    InvoiceTemplateOut,
    InvoiceTemplatePatchIn,
    OrderIn,
    OrderListQuery,
    OrderOut,
    OrderStatusIn,
    ProductIn,
    ProductListQuery,
    ProductOut,
    ProductPatchIn,
)
from api.errors import problem_responses
from api.pagination import Page, paginate
from api.security import current_user
from backend.commerce import dashboard, selectors, services
from backend.commerce.caching import catalog_cached, catalog_page_key
from backend.core import storage
from backend.core.errors import Conflict

products_router = Router()
orders_router = Router()
invoices_router = Router()
invoice_templates_router = Router()
dashboard_router = Router()

JSON = "application/json"


# --- /products ------------------------------------------------------------------------------
def _json(data: Any) -> bytes:
    return json.dumps(data, cls=NinjaJSONEncoder, separators=(",", ":")).encode()


def _product_page_json(query: ProductListQuery) -> bytes:
    page = paginate(selectors.product_list(search=query.search), query)
    shaped = Page[ProductOut].model_validate(
        {"items": [selectors.product_data(p) for p in page["items"]], "count": page["count"]}
    )
    return _json(shaped.model_dump())


def _product_json(product_id: int) -> bytes:
    product = selectors.product_get(product_id=product_id)
    return _json(ProductOut.model_validate(selectors.product_data(product)).model_dump())


@products_router.get(
    "",
    auth=None,
    response={200: Page[ProductOut], **problem_responses(422)},
    summary="The catalog (public), ?search= on name and description",
)
def product_list(request: HttpRequest, query: Query[ProductListQuery]) -> HttpResponse:
    # Sync on purpose: Django's cache is sync (its async methods hop to a thread each), so a
    # sync view costs one hop per request where an async one costs one per cache call.
    search = hashlib.sha256((query.search or "").encode()).hexdigest()[:32]
    key = catalog_page_key("list", search, query.limit, query.offset)
    body = catalog_cached(key, lambda: _product_page_json(query), settings.CATALOG_CACHE_TTL)
    return HttpResponse(body, content_type=JSON)


@products_router.get(
    "/{int:product_id}",
    auth=None,
    response={200: ProductOut, **problem_responses(404)},
    summary="One product (public)",
)
def product_detail(request: HttpRequest, product_id: int) -> HttpResponse:
    key = catalog_page_key("one", product_id)
    body = catalog_cached(key, lambda: _product_json(product_id), settings.CATALOG_CACHE_TTL)
    return HttpResponse(body, content_type=JSON)


@products_router.post(
    "",
    response={201: ProductOut, **problem_responses(401, 403, 422)},
    summary="Create a product (products.manage)",
)
def product_create(request: HttpRequest, payload: ProductIn) -> Status[dict[str, Any]]:
    product = services.product_create(actor=current_user(request), **payload.model_dump())
    return Status(201, selectors.product_data(product))


def _product_update(request: HttpRequest, product_id: int, changes: dict[str, Any]) -> Any:
    product = services.product_update(
        actor=current_user(request), product_id=product_id, changes=changes
    )
    return selectors.product_data(product)


@products_router.patch(
    "/{int:product_id}",
    response={200: ProductOut, **problem_responses(401, 403, 404, 422)},
    summary="Change some fields of a product (products.manage)",
)
def product_patch(request: HttpRequest, product_id: int, payload: ProductPatchIn) -> Any:
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    return _product_update(request, product_id, changes)


@products_router.put(
    "/{int:product_id}",
    response={200: ProductOut, **problem_responses(401, 403, 404, 422)},
    summary="Replace a product's fields (products.manage)",
)
def product_put(request: HttpRequest, product_id: int, payload: ProductIn) -> Any:
    return _product_update(request, product_id, payload.model_dump())


@products_router.delete(
    "/{int:product_id}",
    response={204: None, **problem_responses(401, 403, 404, 409)},
    summary="Delete a product that no order names (products.manage)",
)
def product_delete(request: HttpRequest, product_id: int) -> Status[None]:
    services.product_delete(actor=current_user(request), product_id=product_id)
    return Status(204, None)


# --- /orders --------------------------------------------------------------------------------
@orders_router.post(
    "",
    response={201: OrderOut, **problem_responses(401, 403, 409, 422)},
    summary="Place an order: stock is taken for every line or none",
)
def order_create(request: HttpRequest, payload: OrderIn) -> Status[dict[str, Any]]:
    order = services.order_create(
        actor=current_user(request),
        items=[(line.product_id, line.quantity) for line in payload.items],
    )
    return Status(201, selectors.order_data(order))


@orders_router.get(
    "",
    response={200: Page[OrderOut], **problem_responses(401, 422)},
    summary="Own orders (every order with orders.view_any)",
)
def order_list(request: HttpRequest, query: Query[OrderListQuery]) -> dict[str, Any]:
    orders = selectors.order_list_visible(actor=current_user(request), status=query.status)
    page = paginate(orders, query)
    return {"items": [selectors.order_data(o) for o in page["items"]], "count": page["count"]}


@orders_router.get(
    "/{int:order_id}",
    response={200: OrderOut, **problem_responses(401, 404)},
    summary="One order (owner or orders.view_any)",
)
def order_detail(request: HttpRequest, order_id: int) -> dict[str, Any]:
    order = selectors.order_get_visible(actor=current_user(request), order_id=order_id)
    return selectors.order_data(order)


@orders_router.post(
    "/{int:order_id}/status",
    response={200: OrderOut, **problem_responses(401, 403, 404, 409, 422)},
    summary="Move an order along its lifecycle (orders.manage)",
)
def order_set_status(request: HttpRequest, order_id: int, payload: OrderStatusIn) -> Any:
    order = services.order_set_status(
        actor=current_user(request), order_id=order_id, status=payload.status
    )
    return selectors.order_data(order)


@orders_router.post(
    "/{int:order_id}/cancel",
    response={200: OrderOut, **problem_responses(401, 403, 404, 409)},
    summary="The owner cancels a pending order; its stock goes back",
)
def order_cancel(request: HttpRequest, order_id: int) -> Any:
    order = services.order_cancel(actor=current_user(request), order_id=order_id)
    return selectors.order_data(order)


# --- /invoices ------------------------------------------------------------------------------
@invoices_router.post(
    "",
    response={202: InvoiceOut, **problem_responses(401, 403, 404, 409, 422)},
    summary="Ask for an order's invoice (owner or invoices.manage); rendered in the background",
)
def invoice_create(request: HttpRequest, payload: InvoiceIn) -> Status[dict[str, Any]]:
    invoice = services.invoice_request(
        actor=current_user(request), order_id=payload.order_id, template_id=payload.template_id
    )
    return Status(202, selectors.invoice_data(invoice))


@invoices_router.get(
    "",
    response={200: Page[InvoiceOut], **problem_responses(401, 422)},
    summary="Invoices of own orders (every invoice with invoices.manage)",
)
def invoice_list(request: HttpRequest, query: Query[InvoiceListQuery]) -> dict[str, Any]:
    invoices = selectors.invoice_list_visible(actor=current_user(request), order_id=query.order_id)
    page = paginate(invoices, query)
    return {"items": [selectors.invoice_data(i) for i in page["items"]], "count": page["count"]}


@invoices_router.get(
    "/{int:invoice_id}",
    response={200: InvoiceOut, **problem_responses(401, 404)},
    summary="One invoice (the order's owner or invoices.manage)",
)
def invoice_detail(request: HttpRequest, invoice_id: int) -> dict[str, Any]:
    invoice = selectors.invoice_get_visible(actor=current_user(request), invoice_id=invoice_id)
    return selectors.invoice_data(invoice)


@invoices_router.get(
    "/{int:invoice_id}/pdf",
    response={200: None, 302: None, **problem_responses(401, 404, 409)},
    summary="The PDF: its bytes (local storage) or a redirect to a time-limited link (S3)",
)
def invoice_pdf(request: HttpRequest, invoice_id: int) -> HttpResponseBase:
    invoice = selectors.invoice_get_visible(actor=current_user(request), invoice_id=invoice_id)
    if invoice.status != "ready":
        raise Conflict(detail=f"The invoice is {invoice.status}; its PDF is not there.")
    if not storage.is_s3(storage.default_storage()):
        return FileResponse(
            storage.default_storage().open(invoice.pdf_name, "rb"),
            content_type="application/pdf",
            filename=f"invoice-{invoice.pk}.pdf",
        )
    url = selectors.invoice_pdf_url(invoice)
    assert url is not None
    return HttpResponseRedirect(url)


# --- /invoice-templates ---------------------------------------------------------------------
@invoice_templates_router.get(
    "",
    response={200: Page[InvoiceTemplateOut], **problem_responses(401, 403, 422)},
    summary="Invoice templates (invoices.manage)",
)
def invoice_template_list(request: HttpRequest, query: Query[InvoiceListQuery]) -> Any:
    return paginate(selectors.invoice_template_list_visible(actor=current_user(request)), query)


@invoice_templates_router.post(
    "",
    response={201: InvoiceTemplateOut, **problem_responses(401, 403, 409, 422)},
    summary="Create an invoice template (invoices.manage); it must compile in the sandbox",
)
def invoice_template_create(request: HttpRequest, payload: InvoiceTemplateIn) -> Status[Any]:
    template = services.invoice_template_create(
        actor=current_user(request), name=payload.name, html_template=payload.html_template
    )
    return Status(201, template)


@invoice_templates_router.get(
    "/{int:template_id}",
    response={200: InvoiceTemplateOut, **problem_responses(401, 403, 404)},
    summary="One invoice template (invoices.manage)",
)
def invoice_template_detail(request: HttpRequest, template_id: int) -> Any:
    return selectors.invoice_template_get_visible(
        actor=current_user(request), template_id=template_id
    )


@invoice_templates_router.patch(
    "/{int:template_id}",
    response={200: InvoiceTemplateOut, **problem_responses(401, 403, 404, 409, 422)},
    summary="Change an invoice template (invoices.manage)",
)
def invoice_template_patch(
    request: HttpRequest, template_id: int, payload: InvoiceTemplatePatchIn
) -> Any:
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    return services.invoice_template_update(
        actor=current_user(request), template_id=template_id, changes=changes
    )


@invoice_templates_router.delete(
    "/{int:template_id}",
    response={204: None, **problem_responses(401, 403, 404, 409)},
    summary="Delete an invoice template no invoice uses (invoices.manage)",
)
def invoice_template_delete(request: HttpRequest, template_id: int) -> Status[None]:
    services.invoice_template_delete(actor=current_user(request), template_id=template_id)
    return Status(204, None)


# --- /dashboard -----------------------------------------------------------------------------
@dashboard_router.get(
    "",
    response={200: DashboardOut, **problem_responses(401, 403)},
    summary="Live figures (orders.view_any); cached, pushed as dashboard.updated",
)
def dashboard_detail(request: HttpRequest) -> dict[str, Any]:
    return dashboard.dashboard_get(actor=current_user(request))
