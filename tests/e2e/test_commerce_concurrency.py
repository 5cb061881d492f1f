"""Many concurrent orders through real server processes never oversell: MariaDB behind two
daphne processes, and the embedded SQLite server.

Stock is taken with conditional UPDATEs in product-id order inside each order's transaction;
the assertions are exact: as many successes as there was stock, every other answer a 409,
no 5xx, final stock 0, and the orders in the database add up to what was sold.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from channels.db import database_sync_to_async

from backend.commerce.models import Order, OrderItem, Product
from tests.e2e.conftest import LOG_DIR, Server, ServerPool, free_port, make_user
from tests.e2e.test_embedded import embedded_env, manage_shell
from tests.factories import ProductFactory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CONCURRENCY = 50


@pytest.fixture
def two_servers(servers: ServerPool) -> list[Server]:
    """Two server processes started after this test's database flush: flushes recreate the
    content types under new ids, which long-lived servers would still have cached (guardian
    looks them up to grant the owner's object right on each order)."""
    return servers.start_fresh({"commerce-a": {}, "commerce-b": {}})


async def _fire(
    bases: list[str], tokens: list[str], bodies: list[dict], concurrency: int = CONCURRENCY
) -> Counter[int]:
    """POST every body to /orders, spread over the servers and tokens, ``concurrency`` at a
    time; the count of each status code."""
    statuses: Counter[int] = Counter()
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(n: int, body: dict) -> None:
            async with gate:
                answer = await client.post(
                    f"{bases[n % len(bases)]}/api/v1/orders",
                    json=body,
                    headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"},
                )
                statuses[answer.status_code] += 1
                if answer.status_code >= 500:
                    print("5xx:", answer.text[:500])

        await asyncio.gather(*(one(n, body) for n, body in enumerate(bodies)))
    return statuses


@pytest.mark.django_db(transaction=True)
async def test_concurrent_orders_on_mariadb_never_oversell(two_servers: list[Server]) -> None:
    bases = [server.http for server in two_servers]
    users = [await make_user() for _ in range(5)]
    tokens = [issued.plain_text for _, issued in users]
    scarce = await database_sync_to_async(ProductFactory)(stock=20, price="2.50")

    statuses = await _fire(
        bases, tokens, [{"items": [{"product_id": scarce.pk, "quantity": 1}]}] * 120
    )
    assert statuses == Counter({201: 20, 409: 100}), statuses

    def sold() -> tuple[int, int, int]:
        return (
            Product.objects.get(pk=scarce.pk).stock,
            Order.objects.count(),
            sum(OrderItem.objects.filter(product=scarce).values_list("quantity", flat=True)),
        )

    assert await database_sync_to_async(sold)() == (0, 20, 20)


@pytest.mark.django_db(transaction=True)
async def test_orders_naming_products_in_opposite_orders_do_not_deadlock(
    two_servers: list[Server],
) -> None:
    bases = [server.http for server in two_servers]
    users = [await make_user() for _ in range(5)]
    tokens = [issued.plain_text for _, issued in users]
    first = await database_sync_to_async(ProductFactory)(stock=30, price="1.00")
    second = await database_sync_to_async(ProductFactory)(stock=30, price="3.00")
    rng = random.Random(7)
    bodies = []
    for _ in range(100):
        lines = [
            {"product_id": first.pk, "quantity": 1},
            {"product_id": second.pk, "quantity": 1},
        ]
        rng.shuffle(lines)
        bodies.append({"items": lines})

    statuses = await _fire(bases, tokens, bodies)
    assert statuses == Counter({201: 30, 409: 70}), statuses

    def stocks() -> list[int]:
        return list(
            Product.objects.filter(pk__in=[first.pk, second.pk])
            .order_by("pk")
            .values_list("stock", flat=True)
        )

    assert await database_sync_to_async(stocks)() == [0, 0]


SQLITE_SETUP = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from django.contrib.auth.models import Group
from backend.accounts.models import User
from backend.accounts.tokens import token_issue
from backend.commerce.models import Product
tokens = []
customers = Group.objects.filter(name="Customer")
for n in range(5):
    user = User.objects.create_user(email=f"buyer{n}@example.com", password="pw-123x", name="B")
    user.groups.set(customers)
    tokens.append(token_issue(user=user, device_name="e2e").plain_text)
product = Product.objects.create(name="Scarce", price="5.00", stock=15)
print("RESULT", product.pk, ",".join(tokens))
"""

SQLITE_CHECK = """
from backend.commerce.models import Order, Product
print("RESULT", Product.objects.get(pk={product_id}).stock, Order.objects.count())
"""


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[tuple[Server, int, list[str]]]:
    env = embedded_env(tmp_path / f"{uuid.uuid4().hex}.sqlite3", tmp_path / "var")
    out = manage_shell(env, SQLITE_SETUP, timeout=120)
    _, product_id, tokens = next(
        line for line in out.splitlines() if line.startswith("RESULT")
    ).split()
    port = free_port()
    server = Server(name="sqlite", port=port, env=env, log_path=LOG_DIR / f"sqlite-{port}.log")
    server.start()
    try:
        yield server, int(product_id), tokens.split(",")
    finally:
        server.stop()


async def test_concurrent_orders_on_sqlite_never_oversell(
    sqlite_server: tuple[Server, int, list[str]],
) -> None:
    server, product_id, tokens = sqlite_server
    statuses = await _fire(
        [server.http], tokens, [{"items": [{"product_id": product_id, "quantity": 1}]}] * 60
    )
    assert statuses == Counter({201: 15, 409: 45}), (statuses, server.log_text()[-3000:])
    out = await asyncio.to_thread(
        manage_shell, server.env, SQLITE_CHECK.format(product_id=product_id), 120
    )
    assert next(line for line in out.splitlines() if line.startswith("RESULT")) == "RESULT 0 15"
