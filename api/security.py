"""Bearer token authentication for django-ninja."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.security import HttpBearer

from backend.accounts.models import PersonalAccessToken, User
from backend.accounts.tokens import token_authenticate


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <id>|<secret>``; sets ``request.user`` and ``request.token``."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        access_token = token_authenticate(token)
        if access_token is None:
            return None
        request.user = access_token.user
        request.token = access_token  # type: ignore[attr-defined]
        return access_token.user


token_auth = TokenAuth()


def current_user(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined,return-value]


def current_token(request: HttpRequest) -> PersonalAccessToken:
    return request.token  # type: ignore[attr-defined,no-any-return]


def client_address(request: HttpRequest) -> str:
    """The caller's address, for per-client limits.

    With ``NUM_PROXIES`` reverse proxies in front, the address the outermost of them saw is
    the ``NUM_PROXIES``-th entry from the right of ``X-Forwarded-For``; anything further left
    was written by the client and is not trusted. Without proxies, ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = settings.NUM_PROXIES
    if proxies <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-min(proxies, len(hops))][:64]
