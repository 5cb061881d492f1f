"""The browser middlewares (session, CSRF, ``request.user`` from the session, messages), left
out of the middleware chain that serves ``/api/``.

The API is bearer-token only and sets no cookie: a session cookie is never a way into it
(``api/security.py`` sets ``request.user`` from the token), so loading a session, checking CSRF
and building the messages storage there is work with no effect, about a tenth of a small API
request. ``settings.MIDDLEWARE`` keeps Django's own classes, as ``manage.py check --deploy``
and the admin's checks look for them by name; the server's handler
(``backend.core.asgi.PooledThreadsASGIHandler``) builds a second chain from the same list
without these four (:class:`ApiHandler`) and gives it the requests under ``/api/``. The admin
site and the dashboard page go through the whole chain.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest

API_PREFIX = "/api/"

BROWSER_MIDDLEWARE = frozenset(
    {
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }
)

_loading = threading.Lock()


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def api_middleware() -> list[str]:
    return [path for path in settings.MIDDLEWARE if path not in BROWSER_MIDDLEWARE]


@contextmanager
def _middleware_setting(paths: list[str]) -> Iterator[None]:
    # Django's load_middleware reads settings.MIDDLEWARE and takes no list: it is swapped for
    # the build, once per process when the server's handler is made, before any request.
    saved = settings.MIDDLEWARE
    settings.MIDDLEWARE = paths
    try:
        yield
    finally:
        settings.MIDDLEWARE = saved


class ApiHandler(BaseHandler):
    """Django's request handling (``get_response``) through ``settings.MIDDLEWARE`` minus the
    browser middlewares."""

    def load_middleware(self, is_async: bool = False) -> None:
        with _loading, _middleware_setting(api_middleware()):
            super().load_middleware(is_async=False)
