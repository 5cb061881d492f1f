"""Session, CSRF, auth and messages middlewares run for the admin and pages, not under /api/
(backend/core/browser_only.py); the admin-facing checks are in tests/test_security.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from backend.core import browser_only

BROWSER = (
    browser_only.SessionMiddleware,
    browser_only.CsrfViewMiddleware,
    browser_only.AuthenticationMiddleware,
    browser_only.MessageMiddleware,
)


def _chain(seen: dict[str, Any]) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        seen["session"] = hasattr(request, "session")
        seen["user"] = "user" in request.__dict__ or hasattr(request, "_cached_user")
        seen["messages"] = hasattr(request, "_messages")
        seen["csrf"] = "CSRF_COOKIE" in request.META
        return HttpResponse("ok")

    handler: Any = view
    for middleware in reversed(BROWSER):
        handler = middleware(handler)
    return handler


def test_settings_use_the_wrappers() -> None:
    for middleware in BROWSER:
        assert f"{middleware.__module__}.{middleware.__name__}" in settings.MIDDLEWARE
        assert f"{middleware.__bases__[0].__module__}.{middleware.__name__}" not in (
            settings.MIDDLEWARE
        )


def test_api_requests_skip_the_browser_middlewares() -> None:
    seen: dict[str, Any] = {}
    _chain(seen)(RequestFactory().get("/api/v1/products", HTTP_COOKIE="sessionid=abc"))
    assert seen == {"session": False, "user": False, "messages": False, "csrf": False}


@pytest.mark.django_db
def test_pages_keep_them() -> None:
    seen: dict[str, Any] = {}
    request = RequestFactory().get("/admin/login/")
    _chain(seen)(request)
    assert seen["session"] and seen["messages"]
    assert isinstance(request.user, AnonymousUser)


def test_api_answers_set_no_session_or_csrf_cookie_and_keep_the_security_headers() -> None:
    response = Client().get("/api/v1/ping")
    assert response.status_code == 200
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in response
