"""Placing an order costs a fixed number of queries, whatever the number of lines."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backend.commerce.services import order_create
from backend.core.permissions import has_perm
from tests.factories import ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_order_costs_a_fixed_number_of_queries() -> None:
    customer = UserFactory(roles=["Customer"])
    products = [ProductFactory(stock=10) for _ in range(3)]
    order_create(actor=customer, items=[(products[0].pk, 1)])  # per-process lookups warm

    for lines in (1, 3):
        customer = UserFactory(roles=["Customer"])  # a request's fresh user object
        with CaptureQueriesContext(connection) as queries:
            order = order_create(actor=customer, items=[(p.pk, 1) for p in products[:lines]])
        statements = [q["sql"] for q in queries.captured_queries]
        # The rights (1), one conditional UPDATE per line, the prices, the order, its
        # items, the owner's grant (one INSERT), and the savepoint pair of the test's atomic.
        assert len(statements) == 1 + lines + 1 + 1 + 1 + 1 + 2, "\n".join(statements)
        assert has_perm(customer, "orders.view", order)
