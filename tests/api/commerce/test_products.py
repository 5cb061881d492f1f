"""/products: public reads (cached, invalidated on every change), writes with products.manage."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.commerce.models import Product
from tests.conftest import ApiClient
from tests.factories import ProductFactory, UserFactory, bearer_for, place_order

pytestmark = pytest.mark.django_db

VALID = {"name": "Lamp", "description": "A desk lamp", "price": "19.90", "stock": 5}


def test_list_is_public_paginated_and_searchable(anon: ApiClient) -> None:
    lamp = ProductFactory(name="Desk lamp", price="19.90", stock=3)
    ProductFactory(name="Chair", description="goes with the lamp")
    for _ in range(3):
        ProductFactory(name="Table")

    page = anon.get("/products?limit=2&offset=0").json()
    assert page["count"] == 5 and len(page["items"]) == 2
    first = page["items"][0]
    assert first == {
        "id": lamp.pk,
        "name": "Desk lamp",
        "description": lamp.description,
        "price": "19.90",
        "stock": 3,
        "created_at": first["created_at"],
        "updated_at": first["updated_at"],
    }
    assert first["created_at"].endswith("Z")

    found = anon.get("/products?search=LAMP").json()
    assert {p["name"] for p in found["items"]} == {"Desk lamp", "Chair"}
    assert found["count"] == 2
    assert anon.get("/products?offset=4").json()["count"] == 5


def test_detail_is_public_and_missing_is_404(anon: ApiClient, problem) -> None:
    product = ProductFactory(price="7.00")
    answer = anon.get(f"/products/{product.pk}")
    assert answer.status_code == 200
    assert answer.json()["price"] == "7.00"
    problem(anon.get(f"/products/{product.pk + 1000}"), 404)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "offset=-1", "limit=abc", "search=" + "x" * 101]
)
def test_bad_list_parameters_are_422(anon: ApiClient, problem, query: str) -> None:
    problem(anon.get(f"/products?{query}"), 422)


def test_editor_creates_updates_and_deletes(as_editor: ApiClient, anon: ApiClient) -> None:
    created = as_editor.post("/products", VALID)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["price"] == "19.90" and body["stock"] == 5
    product_id = body["id"]

    patched = as_editor.patch(f"/products/{product_id}", {"price": 21, "stock": 0})
    assert patched.status_code == 200
    assert patched.json()["price"] == "21.00" and patched.json()["stock"] == 0
    assert patched.json()["name"] == "Lamp"

    put = as_editor.put(f"/products/{product_id}", {**VALID, "name": "Lamp 2"})
    assert put.json()["name"] == "Lamp 2" and put.json()["stock"] == 5

    assert as_editor.delete(f"/products/{product_id}").status_code == 204
    assert anon.get(f"/products/{product_id}").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "1.234"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "1e30"}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 2**40}, "stock"),
        ({"name": "   "}, "name"),
        ({"name": "bad\x00name"}, "name"),
    ],
)
def test_invalid_products_are_422(as_editor: ApiClient, problem, change, field) -> None:
    body = problem(as_editor.post("/products", {**VALID, **change}), 422)
    assert any(field in error["loc"] for error in body["errors"]), body
    assert not Product.objects.exists()


def test_writes_need_products_manage(
    as_customer: ApiClient, as_admin: ApiClient, anon: ApiClient, problem
) -> None:
    product = ProductFactory()
    for client, status in ((anon, 401), (as_customer, 403)):
        problem(client.post("/products", VALID), status)
        problem(client.patch(f"/products/{product.pk}", {"stock": 1}), status)
        problem(client.put(f"/products/{product.pk}", VALID), status)
        problem(client.delete(f"/products/{product.pk}"), status)
    assert Product.objects.get(pk=product.pk).stock == 10
    # Admin holds everything.
    assert as_admin.patch(f"/products/{product.pk}", {"stock": 1}).status_code == 200


def test_deactivated_editor_is_refused(problem) -> None:
    editor = UserFactory(roles=["Editor"])
    client = ApiClient(bearer_for(editor))
    editor.is_active = False
    editor.save()
    problem(client.post("/products", VALID), 401)


def test_missing_product_writes_are_404(as_editor: ApiClient, problem) -> None:
    problem(as_editor.patch("/products/999999", {"stock": 1}), 404)
    problem(as_editor.delete("/products/999999"), 404)


def test_product_in_an_order_cannot_be_deleted(as_editor: ApiClient, customer, problem) -> None:
    product = ProductFactory()
    place_order(customer, (product, 1))
    problem(as_editor.delete(f"/products/{product.pk}"), 409)


@pytest.mark.django_db(transaction=True)  # invalidation happens on commit
def test_cache_is_invalidated_by_every_change(
    as_editor: ApiClient, anon: ApiClient, customer
) -> None:
    product = ProductFactory(name="Cached", stock=4, price="3.00")
    assert anon.get("/products").json()["items"][0]["stock"] == 4
    assert anon.get(f"/products/{product.pk}").json()["stock"] == 4

    # A write behind the cache's back is not seen: the answer does come from the cache.
    Product.objects.filter(pk=product.pk).update(name="Changed behind the cache")
    assert anon.get("/products").json()["items"][0]["name"] == "Cached"

    # Every committed change through the services invalidates.
    as_editor.patch(f"/products/{product.pk}", {"price": "4.00"})
    listed = anon.get("/products").json()["items"][0]
    assert listed["price"] == "4.00" and listed["name"] == "Changed behind the cache"
    assert anon.get(f"/products/{product.pk}").json()["price"] == "4.00"

    with override_settings(CATALOG_STOCK_MAX_AGE=0):  # stock moved by orders shows at once
        place_order(customer, (product, 3))  # stock taken by an order
        assert anon.get(f"/products/{product.pk}").json()["stock"] == 1
        assert anon.get("/products").json()["items"][0]["stock"] == 1

    ProductFactory(name="New")
    # A factory write does not go through the services: still the cached page...
    assert anon.get("/products").json()["count"] == 1
    as_editor.post("/products", VALID)  # ...until a service change bumps the version.
    assert anon.get("/products").json()["count"] == 3

    as_editor.delete(f"/products/{anon.get('/products').json()['items'][-1]['id']}")
    assert anon.get("/products").json()["count"] == 2


def _documented_price_schema() -> dict:
    from django.test import Client

    document = Client().get("/api/v1/openapi.json").json()
    return document["components"]["schemas"]["ProductIn"]["properties"]["price"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_price_the_document_allows_is_accepted(as_editor: ApiClient, data) -> None:
    """The schema is no wider than the server: a generated client never meets a 422 for a
    price its OpenAPI document allows (schemathesis tolerates 422s on writes, so it cannot
    catch this)."""
    forms = _documented_price_schema()["anyOf"]
    text = next(form for form in forms if form["type"] == "string")
    whole = next(form for form in forms if form["type"] == "integer")
    price = data.draw(
        st.from_regex(text["pattern"], fullmatch=True)
        | st.integers(whole["minimum"], whole["maximum"])
    )
    created = as_editor.post("/products", {**VALID, "price": price})
    assert created.status_code == 201, (price, created.content)
    assert Decimal(created.json()["price"]) == Decimal(str(price))


@pytest.mark.parametrize("price", ["0", "0.00", "-1", "1.001", "12345678901", "abc", ""])
def test_prices_outside_the_document_are_422(as_editor: ApiClient, problem, price: str) -> None:
    pattern = next(f for f in _documented_price_schema()["anyOf"] if f["type"] == "string")
    assert re.fullmatch(pattern["pattern"], price) is None
    problem(as_editor.post("/products", {**VALID, "price": price}), 422)


@pytest.mark.django_db(transaction=True)
def test_stock_moved_by_orders_shows_within_the_max_age(
    as_editor: ApiClient, anon: ApiClient, customer
) -> None:
    """Orders do not invalidate the catalog: a page built before an order is served until it
    is CATALOG_STOCK_MAX_AGE old, then rebuilt with the stock left; an editor's change and a
    cancellation's returned stock follow the same two rules."""
    product = ProductFactory(name="Busy", stock=10, price="3.00")
    with override_settings(CATALOG_STOCK_MAX_AGE=3600):
        assert anon.get("/products").json()["items"][0]["stock"] == 10
        assert anon.get(f"/products/{product.pk}").json()["stock"] == 10
        order = place_order(customer, (product, 4))
        # Younger than the max age: the page from before the order, as built.
        assert anon.get("/products").json()["items"][0]["stock"] == 10
        assert anon.get(f"/products/{product.pk}").json()["stock"] == 10
        # An editor's change is never held back.
        as_editor.patch(f"/products/{product.pk}", {"name": "Busy, renamed"})
        listed = anon.get("/products").json()["items"][0]
        assert (listed["name"], listed["stock"]) == ("Busy, renamed", 6)
    with override_settings(CATALOG_STOCK_MAX_AGE=3600):
        assert ApiClient(bearer_for(customer)).post(f"/orders/{order.pk}/cancel").status_code == 200
        assert anon.get("/products").json()["items"][0]["stock"] == 6  # not yet
    with override_settings(CATALOG_STOCK_MAX_AGE=0):  # the same cached page, now too old
        assert anon.get("/products").json()["items"][0]["stock"] == 10
        assert anon.get(f"/products/{product.pk}").json()["stock"] == 10
