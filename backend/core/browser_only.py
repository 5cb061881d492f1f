"""The browser middlewares (session, CSRF, ``request.user`` from the session, messages), skipped
under ``/api/``.

The API is bearer-token only and sets no cookie: a session cookie is never a way into it
(``api/security.py`` sets ``request.user`` from the token), so loading a session, checking CSRF
and building the messages storage there is work with no effect, about a tenth of a small API
request. The admin site and the dashboard page keep all four. Each class is a subclass of
Django's own, so the admin's system checks still find them in ``MIDDLEWARE``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest
from django.middleware import csrf

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class SessionMiddleware(sessions_middleware.SessionMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request) if is_api(request) else super().__call__(request)


class CsrfViewMiddleware(csrf.CsrfViewMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request) if is_api(request) else super().__call__(request)


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request) if is_api(request) else super().__call__(request)


class MessageMiddleware(messages_middleware.MessageMiddleware):
    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request) if is_api(request) else super().__call__(request)
