"""The live dashboard page in headless Chromium against a real server: sign in, live figures
(an isolated order on the page within a second of its REST answer), users online, a server
restart under the open page (reconnecting, back live, nothing missed or counted twice), and
the not-allowed state. Screenshots of each state go to ``var/test-artifacts/``. Also, over
plain sockets: users online follows sockets opening and closing, with Redis and in the
embedded default."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache

from backend.accounts.tokens import token_issue
from backend.commerce import dashboard
from realtime.presence import online_user_ids
from tests.e2e.conftest import LOG_DIR, ROOT, WS, OpenWS, Server, ServerPool, free_port, make_user
from tests.e2e.test_embedded import embedded_env, manage_shell
from tests.factories import DEFAULT_PASSWORD, ProductFactory, UserFactory
from workers.celery import app as celery_app

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

ARTIFACTS = ROOT / "var" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def page_server(servers: ServerPool) -> Iterator[Server]:
    """A server of its own on a fixed port (the test restarts it there), serving the page's
    static files itself."""
    port = free_port()
    server = Server(
        name="dashboard-page",
        port=port,
        env=servers.mariadb_env(
            SERVE_STATIC="true",
            STATIC_MANIFEST="false",
            STATIC_USE_FINDERS="true",
            # The factories hash passwords with the test settings' fast MD5 hasher.
            PASSWORD_HASHERS=",".join(settings.PASSWORD_HASHERS),
        ),
        log_path=LOG_DIR / f"{os.getpid()}-dashboard-page-{port}.log",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker() -> Iterator[object]:
    """A real Celery worker (thread): the dashboard's coalesced recomputation is a job."""
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(celery_app.conf.task_default_queue)
    # A recomputation queued before the purge (another test's socket closing) is gone.
    cache.delete_many([dashboard.PENDING_KEY, dashboard.STARTED_KEY])
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
    ) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail(
            "chromium and chromedriver are needed (scripts/ensure-browser.sh installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1200,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def screenshot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"dashboard-{name}.png"))


def state(driver: Any) -> str:
    return str(driver.find_element("id", "connection").get_attribute("data-state"))


def orders_on_page(driver: Any) -> int | None:
    value = driver.execute_script("return document.body.dataset.ordersToday")
    return int(value) if value is not None else None


def users_online_on_page(driver: Any) -> int | None:
    value = driver.find_element("id", "users-online").text
    return int(value) if value.isdigit() else None


def wait_until_quiet() -> None:
    """Until no dashboard recomputation is queued or within its window: the next change is
    then recomputed at once, as an isolated order is."""
    wait_for(
        lambda: (
            cache.get(dashboard.PENDING_KEY) is None and cache.get(dashboard.STARTED_KEY) is None
        ),
        "no dashboard recomputation due",
    )


def browser_log(driver: Any) -> str:
    """The page's console (errors included), for a failing test's report."""
    return "\n".join(str(entry) for entry in driver.get_log("browser"))


def sign_in(driver: Any, server: Server, email: str) -> None:
    driver.get(f"{server.http}/dashboard/")
    driver.find_element("id", "email").send_keys(email)
    driver.find_element("id", "password").send_keys(DEFAULT_PASSWORD)
    driver.find_element("css selector", "#login-form button[type=submit]").click()


def place_order(server: Server, token: str, product_id: int) -> None:
    answer = httpx.post(
        f"{server.http}/api/v1/orders",
        json={"items": [{"product_id": product_id, "quantity": 1}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=15,
    )
    assert answer.status_code == 201, answer.text


def dashboard_over_rest(server: Server, token: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{server.http}/api/v1/dashboard", headers={"Authorization": f"Bearer {token}"}, timeout=15
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_staff_sees_live_figures_across_a_server_restart(
    page_server: Server, servers: ServerPool, worker: object, browser: Any
) -> None:
    staff = UserFactory(roles=["Admin"])
    staff_token = token_issue(user=staff, device_name="rest").plain_text
    customer = UserFactory(roles=["Customer"])
    customer_token = token_issue(user=customer, device_name="rest").plain_text
    product = ProductFactory(stock=100, price="5.00")

    sign_in(browser, page_server, staff.email)
    try:
        wait_for(lambda: state(browser) == "live", "the page to go live")
    except AssertionError:
        screenshot(browser, "failed-to-go-live")
        raise AssertionError(f"not live; console:\n{browser_log(browser)}") from None
    wait_for(lambda: orders_on_page(browser) is not None, "the first figures")
    start = orders_on_page(browser)
    assert start == dashboard_over_rest(page_server, staff_token)["orders_today"]
    # The page's own socket is a user online, loaded or pushed once it opened.
    wait_for(lambda: (users_online_on_page(browser) or 0) >= 1, "the page's user online")
    screenshot(browser, "live")

    # An isolated order (nothing recomputed in the last second) is on the page within a
    # second of its REST answer.
    wait_until_quiet()
    place_order(page_server, customer_token, product.pk)
    answered_at = time.monotonic()
    wait_for(lambda: orders_on_page(browser) == start + 1, "the order on the page", timeout=5)
    live_seconds = time.monotonic() - answered_at
    assert live_seconds < 1.0, f"the order took {live_seconds:.2f} s to reach the page"

    # The server goes away under the open page; orders keep coming through another process.
    page_server.stop()
    wait_for(lambda: state(browser) == "reconnecting", "the reconnecting state")
    screenshot(browser, "reconnecting")
    other = servers.get("main")
    for _ in range(3):
        place_order(other, customer_token, product.pk)
    page_server.start()
    wait_for(lambda: state(browser) == "live", "live again", timeout=30)
    wait_for(lambda: orders_on_page(browser) == start + 4, "the orders placed meanwhile", 10)
    screenshot(browser, "caught-up")
    assert dashboard_over_rest(page_server, staff_token)["orders_today"] == start + 4
    # Nothing counted twice: the figure stays put once the page is caught up.
    time.sleep(1.5)  # no condition to poll for "no further change"; a short settle is the check
    assert orders_on_page(browser) == start + 4
    print(f"order to page: {live_seconds:.2f} s")


def test_a_customer_sees_not_allowed(page_server: Server, browser: Any) -> None:
    customer = UserFactory(roles=["Customer"])
    sign_in(browser, page_server, customer.email)
    wait_for(lambda: browser.find_element("id", "forbidden-view").is_displayed(), "the refusal")
    assert not browser.find_element("id", "dashboard-view").is_displayed()
    assert "Not allowed" in browser.find_element("id", "forbidden-title").text
    screenshot(browser, "not-allowed")


def test_the_page_keeps_its_token_out_of_cookies(page_server: Server, browser: Any) -> None:
    staff = UserFactory(roles=["Admin"])
    sign_in(browser, page_server, staff.email)
    wait_for(lambda: state(browser) == "live", "the page to go live")
    assert browser.get_cookies() == []
    assert browser.execute_script("return sessionStorage.getItem('triton.token')")


# --- users online, over plain sockets ----------------------------------------------------------
def _online_update(expected: int) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: (
        frame.get("type") == "event"
        and frame.get("event") == "dashboard.updated"
        and frame["data"]["users_online"] == expected
    )


async def _users_online_over_rest(server: Server, token: str) -> int:
    return int((await asyncio.to_thread(dashboard_over_rest, server, token))["users_online"])


async def test_users_online_follows_sockets_opening_and_closing(
    server: Server, open_ws: OpenWS, worker: object
) -> None:
    _, staff = await make_user(["Admin"])
    customer, customer_token = await make_user()
    staff_ws: WS = await open_ws(server, staff.plain_text)
    assert (await staff_ws.subscribe("dashboard", id="d"))["type"] == "subscribed"
    # The staff socket's own opening was recomputed: the count includes it.
    await asyncio.to_thread(wait_until_quiet)
    before = await _users_online_over_rest(server, staff.plain_text)
    assert before >= 1

    first = await open_ws(server, customer_token.plain_text)
    await staff_ws.recv_until(_online_update(before + 1), timeout=5)
    assert await _users_online_over_rest(server, staff.plain_text) == before + 1
    # A second socket of the same user is not a second user; closing one leaves them online.
    second = await open_ws(server, customer_token.plain_text)
    await first.close()
    await asyncio.to_thread(wait_until_quiet)
    assert await _users_online_over_rest(server, staff.plain_text) == before + 1
    assert customer.pk in await asyncio.to_thread(online_user_ids)

    # Their last socket closes: the count goes back down, pushed.
    await second.close()
    await staff_ws.recv_until(_online_update(before), timeout=5)
    assert await _users_online_over_rest(server, staff.plain_text) == before


EMBEDDED_SETUP = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from backend.accounts.models import User
from backend.accounts.tokens import token_issue
staff = User.objects.create_superuser(email="staff@example.com", password="pw-embedded-123")
other = User.objects.create_user(email="other@example.com", password="pw-embedded-123", name="O")
print("RESULT", token_issue(user=staff, device_name="e2e").plain_text,
      token_issue(user=other, device_name="e2e").plain_text)
"""


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[tuple[Server, str, str]]:
    """make run's in-process default (SQLite, in-memory layer, history and cache, jobs run
    in-process): a server of its own; (server, staff token, other user's token)."""
    env = embedded_env(tmp_path / "db.sqlite3", tmp_path / "var")
    out = manage_shell(env, EMBEDDED_SETUP)
    _, staff, other = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    port = free_port()
    server = Server(
        name="dashboard-embedded", port=port, env=env, log_path=LOG_DIR / f"embedded-{port}.log"
    )
    server.start()
    try:
        yield server, staff, other
    finally:
        server.stop()


async def test_users_online_in_the_embedded_default(
    embedded_server: tuple[Server, str, str], open_ws: OpenWS
) -> None:
    server, staff, other = embedded_server
    staff_ws: WS = await open_ws(server, staff)
    assert (await staff_ws.subscribe("dashboard", id="d"))["type"] == "subscribed"
    # A server of its own: the staff socket is the only one.
    deadline = time.monotonic() + 5
    while await _users_online_over_rest(server, staff) != 1:
        assert time.monotonic() < deadline, "the staff socket never counted"
        await asyncio.sleep(0.1)

    other_ws = await open_ws(server, other)
    await staff_ws.recv_until(_online_update(2), timeout=5)
    assert await _users_online_over_rest(server, staff) == 2
    await other_ws.close()
    await staff_ws.recv_until(_online_update(1), timeout=5)
    assert await _users_online_over_rest(server, staff) == 1
