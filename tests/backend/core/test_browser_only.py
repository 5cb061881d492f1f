"""Session, CSRF, auth and messages middlewares run for the admin and pages, not under /api/
(backend/core/browser_only.py); the admin-facing checks are in tests/test_security.py, and
`check --deploy` (which looks for Django's classes by name) in tests/backend/test_settings.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from backend.core import browser_only
from backend.core.asgi import PooledThreadsASGIHandler
from tests.asgi import http_scope, pooled_handler

seen: list[dict[str, bool]] = []


def record(request: HttpRequest) -> HttpResponse:
    seen.append(
        {
            "session": hasattr(request, "session"),
            "user": hasattr(request, "user"),
            "messages": hasattr(request, "_messages"),
            "csrf": "CSRF_COOKIE" in request.META,
        }
    )
    return JsonResponse({"ok": True})


urlpatterns = [path("api/v1/record", record), path("page/record", record)]


def test_settings_keep_djangos_own_classes_and_the_api_chain_drops_them() -> None:
    for name in browser_only.BROWSER_MIDDLEWARE:
        assert name in settings.MIDDLEWARE
        assert name not in browser_only.api_middleware()
    # Everything else stays, in the same order: the request id and access log first, the
    # security headers and the API's error and content-type handling after them.
    api = browser_only.api_middleware()
    assert len(api) == len(settings.MIDDLEWARE) - 4
    kept = [
        "backend.core.observability.RequestIdMiddleware",
        "backend.core.access_log.AccessLogMiddleware",
        "django.middleware.security.SecurityMiddleware",
        "backend.core.security_headers.ContentSecurityPolicyMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "api.errors.ProblemDetailsMiddleware",
        "api.content_types.JsonContentTypeMiddleware",
    ]
    assert [name for name in api if name in kept] == kept
    assert settings.MIDDLEWARE[0] == browser_only.api_middleware()[0]


def test_building_the_api_chain_leaves_the_setting_as_it_was() -> None:
    before = list(settings.MIDDLEWARE)
    browser_only.ApiHandler().load_middleware()
    assert list(settings.MIDDLEWARE) == before


@pytest.fixture
def handler(settings: Any) -> Iterator[PooledThreadsASGIHandler]:
    settings.ROOT_URLCONF = __name__
    seen.clear()
    with pooled_handler() as handler:
        yield handler


async def _get(handler: PooledThreadsASGIHandler, url: str) -> dict[str, Any]:
    scope = http_scope(url, [(b"cookie", b"sessionid=abc; csrftoken=x")])
    app = ApplicationCommunicator(handler, scope)
    await app.send_input({"type": "http.request", "body": b""})
    start = await app.receive_output(5)
    await app.receive_output(5)
    await app.wait(5)
    return start


@pytest.mark.django_db(transaction=True)
async def test_api_requests_skip_the_browser_middlewares_and_pages_keep_them(
    handler: PooledThreadsASGIHandler,
) -> None:
    api = await _get(handler, "/api/v1/record")
    page = await _get(handler, "/page/record")
    assert seen[0] == {"session": False, "user": False, "messages": False, "csrf": False}
    assert seen[1]["session"] and seen[1]["user"] and seen[1]["messages"]
    api_headers = dict(api["headers"])
    # No cookie set and no Vary: Cookie on the API; the security headers still there.
    assert not any(name.lower() == b"set-cookie" for name, _ in api["headers"])
    assert b"Cookie" not in api_headers.get(b"Vary", b"")
    assert api_headers[b"X-Content-Type-Options"] == b"nosniff"
    assert api_headers[b"X-Frame-Options"] == b"DENY"
    assert b"Content-Security-Policy" in api_headers
    assert page["status"] == 200
