"""Bearer token authentication for django-ninja."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from backend.accounts.models import PersonalAccessToken, User
from backend.accounts.tokens import token_authenticate
from backend.core.throttling import client_address

__all__ = ["client_address", "current_token", "current_user", "token_auth"]


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
    return request.auth  # type: ignore[attr-defined]  # set by ninja's authentication


def current_token(request: HttpRequest) -> PersonalAccessToken:
    return request.token  # type: ignore[attr-defined]  # set by TokenAuth above
