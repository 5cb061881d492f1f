"""/orders: atomic stock, server-side prices, visibility, the status lifecycle."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backend.accounts.models import User
from backend.commerce.models import Order, Product
from tests.conftest import ApiClient
from tests.factories import ProductFactory, UserFactory, bearer_for, place_order

pytestmark = pytest.mark.django_db


def _stock(product: Product) -> int:
    return Product.objects.get(pk=product.pk).stock


def test_order_takes_stock_and_prices_come_from_the_server(as_customer: ApiClient, customer):
    lamp = ProductFactory(price="19.99", stock=5)
    bulb = ProductFactory(price="0.10", stock=100)
    answer = as_customer.post(
        "/orders",
        {
            "items": [
                {"product_id": lamp.pk, "quantity": 2, "unit_price": "0.01"},
                {"product_id": bulb.pk, "quantity": 3},
            ],
            "total_amount": "0.01",
        },
    )
    assert answer.status_code == 201, answer.content
    order = answer.json()
    assert order["status"] == "pending" and order["user_id"] == customer.pk
    assert order["total_amount"] == "40.28"
    assert [(i["product_id"], i["quantity"], i["unit_price"]) for i in order["items"]] == [
        (lamp.pk, 2, "19.99"),
        (bulb.pk, 3, "0.10"),
    ]
    assert _stock(lamp) == 3 and _stock(bulb) == 97
    assert Order.objects.get(pk=order["id"]).total_amount == Decimal("40.28")


def test_a_product_named_twice_counts_once(as_customer: ApiClient) -> None:
    lamp = ProductFactory(price="1.00", stock=3)
    answer = as_customer.post(
        "/orders",
        {"items": [{"product_id": lamp.pk, "quantity": 1}, {"product_id": lamp.pk, "quantity": 2}]},
    )
    assert answer.status_code == 201
    assert answer.json()["items"][0]["quantity"] == 3 and answer.json()["total_amount"] == "3.00"
    assert _stock(lamp) == 0


def test_short_stock_is_409_and_takes_nothing(as_customer: ApiClient, problem) -> None:
    plenty = ProductFactory(stock=10)
    scarce = ProductFactory(stock=1)
    body = problem(
        as_customer.post(
            "/orders",
            {
                "items": [
                    {"product_id": plenty.pk, "quantity": 4},
                    {"product_id": scarce.pk, "quantity": 2},
                ]
            },
        ),
        409,
    )
    assert body["errors"][0]["loc"] == ["body", "items", 1, "quantity"]
    assert _stock(plenty) == 10 and _stock(scarce) == 1
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"product_id": "P1", "quantity": 0}],
        [{"product_id": "P1", "quantity": -3}],
        [{"product_id": 999999, "quantity": 1}],
        [{"product_id": "P1", "quantity": 1}, {"product_id": 999999, "quantity": 1}],
        [{"product_id": 0, "quantity": 1}],
        [{"product_id": 2**70, "quantity": 1}],
        [{"product_id": "P1", "quantity": 2**40}],
        [{"product_id": "P1", "quantity": "many"}],
        [{"product_id": "P1"}],
    ],
)
def test_bad_orders_are_422(as_customer: ApiClient, problem, items) -> None:
    product = ProductFactory(stock=5)
    for line in items:
        if line.get("product_id") == "P1":
            line["product_id"] = product.pk
    problem(as_customer.post("/orders", {"items": items}), 422)
    assert _stock(product) == 5 and not Order.objects.exists()


@pytest.mark.parametrize("body", [None, {}, {"items": "x"}, [1, 2]])
def test_malformed_order_bodies_are_refused(as_customer: ApiClient, problem, body) -> None:
    answer = as_customer.post("/orders", body)
    assert answer.status_code in (400, 422), answer.content
    problem(answer, answer.status_code)


def test_ordering_needs_authentication(anon: ApiClient, problem) -> None:
    product = ProductFactory()
    problem(anon.post("/orders", {"items": [{"product_id": product.pk, "quantity": 1}]}), 401)
    problem(anon.get("/orders"), 401)


def test_orders_are_visible_to_owner_and_view_any_only(problem) -> None:
    owner, other, editor, admin = (
        UserFactory(roles=["Customer"]),
        UserFactory(roles=["Customer"]),
        UserFactory(roles=["Editor"]),
        UserFactory(roles=["Admin"]),
    )
    product = ProductFactory(stock=10)
    mine = place_order(owner, (product, 1))
    theirs = place_order(other, (product, 1))
    as_owner = ApiClient(bearer_for(owner))
    as_editor, as_admin = ApiClient(bearer_for(editor)), ApiClient(bearer_for(admin))

    assert as_owner.get(f"/orders/{mine.pk}").json()["id"] == mine.pk
    assert [o["id"] for o in as_owner.get("/orders").json()["items"]] == [mine.pk]
    # Another user's order looks exactly like a missing one.
    missing = problem(as_owner.get("/orders/999999"), 404)
    hidden = problem(as_owner.get(f"/orders/{theirs.pk}"), 404)
    assert hidden["detail"] == missing["detail"]
    problem(as_editor.get(f"/orders/{mine.pk}"), 404)
    assert as_editor.get("/orders").json() == {"items": [], "count": 0}

    assert as_admin.get(f"/orders/{theirs.pk}").status_code == 200
    listed = as_admin.get("/orders").json()
    assert [o["id"] for o in listed["items"]] == [theirs.pk, mine.pk] and listed["count"] == 2
    assert as_admin.get("/orders?status=cancelled").json()["count"] == 0


def test_order_list_is_one_query_plus_items(django_assert_max_num_queries, customer: User) -> None:
    from backend.commerce.selectors import order_data, order_list_visible

    product = ProductFactory(stock=50)
    for _ in range(5):
        place_order(customer, (product, 1))
    customer = type(customer).objects.get(pk=customer.pk)
    with django_assert_max_num_queries(4):  # user's rights (2), orders, items
        rows = [order_data(o) for o in order_list_visible(actor=customer)]
    assert len(rows) == 5


def test_status_lifecycle(as_admin: ApiClient, customer, problem) -> None:
    product = ProductFactory(stock=5)
    order = place_order(customer, (product, 2))
    url = f"/orders/{order.pk}/status"
    problem(as_admin.post(url, {"status": "shipped"}), 409)  # pending -> shipped skips paid
    for status in ("paid", "shipped", "delivered"):
        answer = as_admin.post(url, {"status": status})
        assert answer.status_code == 200 and answer.json()["status"] == status
    problem(as_admin.post(url, {"status": "cancelled"}), 409)  # delivered is final
    problem(as_admin.post(url, {"status": "pending"}), 409)
    problem(as_admin.post(url, {"status": "lost"}), 422)
    problem(as_admin.post("/orders/999999/status", {"status": "paid"}), 404)
    assert _stock(product) == 3


@pytest.mark.parametrize("start", [[], ["paid"]])
def test_cancelling_returns_stock(as_admin: ApiClient, customer, start) -> None:
    product = ProductFactory(stock=5)
    order = place_order(customer, (product, 2))
    for status in start:
        as_admin.post(f"/orders/{order.pk}/status", {"status": status})
    answer = as_admin.post(f"/orders/{order.pk}/status", {"status": "cancelled"})
    assert answer.json()["status"] == "cancelled"
    assert _stock(product) == 5


def test_status_changes_need_orders_manage(problem, customer) -> None:
    order = place_order(customer, (ProductFactory(), 1))
    url = f"/orders/{order.pk}/status"
    problem(ApiClient().post(url, {"status": "paid"}), 401)
    problem(ApiClient(bearer_for(customer)).post(url, {"status": "paid"}), 403)  # even the owner
    problem(ApiClient(bearer_for(UserFactory(roles=["Editor"]))).post(url, {"status": "paid"}), 403)
    assert Order.objects.get(pk=order.pk).status == "pending"


def test_owner_cancels_a_pending_order_only(as_customer: ApiClient, customer, problem) -> None:
    product = ProductFactory(stock=3)
    order = place_order(customer, (product, 3))
    other = ApiClient(bearer_for(UserFactory()))
    problem(other.post(f"/orders/{order.pk}/cancel"), 404)
    problem(ApiClient().post(f"/orders/{order.pk}/cancel"), 401)
    admin = ApiClient(bearer_for(UserFactory(roles=["Admin"])))
    problem(admin.post(f"/orders/{order.pk}/cancel"), 403)  # staff use /status

    answer = as_customer.post(f"/orders/{order.pk}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert _stock(product) == 3
    problem(as_customer.post(f"/orders/{order.pk}/cancel"), 409)  # already cancelled

    paid = place_order(customer, (product, 1))
    admin.post(f"/orders/{paid.pk}/status", {"status": "paid"})
    problem(as_customer.post(f"/orders/{paid.pk}/cancel"), 409)
    problem(as_customer.post("/orders/999999/cancel"), 404)
