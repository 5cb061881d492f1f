"""Login limits that hold under concurrency, across the API and the admin site, per email and
per client address."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client

from backend.accounts.models import User
from tests.conftest import ApiClient
from tests.factories import DEFAULT_PASSWORD, UserFactory

ADMIN_LOGIN = "/admin/login/?next=/admin/"


def _admin_login(client: Client, email: str, password: str):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"})


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_for_one_email_get_exactly_the_limit_checked(settings) -> None:
    """40 simultaneous guesses: 5 are checked (401), the other 35 are refused (429). A slow
    production hasher widens the window the old check-then-count code lost the race in."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.LOGIN_ADDRESS_RATE_LIMIT = "1000/900"
    user = UserFactory()
    attempts = 40
    start = threading.Barrier(attempts)
    statuses: list[int] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        try:
            start.wait(timeout=30)
            response = ApiClient().post(
                "/auth/login",
                {"email": user.email, "password": f"wrong-guess-{n}"},
                REMOTE_ADDR=f"10.9.0.{n}",
            )
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert Counter(statuses) == {401: settings.LOGIN_MAX_FAILURES, 429: attempts - 5}


@pytest.mark.django_db
def test_login_is_limited_per_client_address(anon: ApiClient, settings, problem) -> None:
    settings.LOGIN_ADDRESS_RATE_LIMIT = "3/900"
    customer = UserFactory()
    good = {"email": customer.email, "password": DEFAULT_PASSWORD}
    assert anon.post("/auth/login", good).status_code == 200
    for n in range(2):
        anon.post("/auth/login", {"email": f"nobody{n}@example.com", "password": "x"})
    refused = anon.post("/auth/login", good)
    problem(refused, 429)
    assert 0 < int(refused["Retry-After"]) <= 900
    assert anon.post("/auth/login", good, REMOTE_ADDR="10.7.7.7").status_code == 200


@pytest.mark.django_db
def test_admin_login_failures_count_toward_the_api_limit(anon: ApiClient, problem) -> None:
    staff = UserFactory(is_staff=True)
    browser = Client()
    for _ in range(5):
        page = _admin_login(browser, staff.email, "wrong-guess-1")
        assert page.status_code == 200 and "_auth_user_id" not in browser.session
    problem(anon.post("/auth/login", {"email": staff.email, "password": DEFAULT_PASSWORD}), 429)


@pytest.mark.django_db
def test_admin_login_is_limited_after_api_failures(anon: ApiClient) -> None:
    staff = UserFactory(is_staff=True)
    for _ in range(5):
        anon.post("/auth/login", {"email": staff.email, "password": "wrong-guess-1"})
    browser = Client()
    page = _admin_login(browser, staff.email, DEFAULT_PASSWORD)
    assert page.status_code == 200
    assert "Too many failed logins" in page.content.decode()
    assert "_auth_user_id" not in browser.session


@pytest.mark.django_db
def test_admin_login_is_limited_per_client_address(settings) -> None:
    settings.LOGIN_ADDRESS_RATE_LIMIT = "2/900"
    staff = UserFactory(is_staff=True)
    browser = Client()
    _admin_login(browser, "nobody@example.com", "x-guess-1")
    _admin_login(browser, "nobody2@example.com", "x-guess-1")
    page = _admin_login(browser, staff.email, DEFAULT_PASSWORD)
    assert "Too many failed logins" in page.content.decode()
    assert "_auth_user_id" not in browser.session


@pytest.mark.django_db
def test_admin_login_still_works_for_staff_and_refuses_others() -> None:
    staff = UserFactory(is_staff=True)
    customer = UserFactory()
    browser = Client()
    assert _admin_login(browser, staff.email.upper(), DEFAULT_PASSWORD).status_code == 302
    assert int(browser.session["_auth_user_id"]) == staff.pk
    outsider = Client()
    page = _admin_login(outsider, customer.email, DEFAULT_PASSWORD)
    assert page.status_code == 200 and "_auth_user_id" not in outsider.session
    assert User.objects.get(pk=customer.pk).last_login is None
