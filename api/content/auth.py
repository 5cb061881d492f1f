"""Optional bearer authentication for public reads (published posts).

No ``Authorization`` header: the request goes on as anonymous. A header with a bad, expired or
revoked token is still 401: a client that believes it is signed in learns that it is not.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from api.security import token_auth


def optional_token_auth(request: HttpRequest) -> Any:
    if "HTTP_AUTHORIZATION" not in request.META:
        return AnonymousUser()
    return token_auth(request)
