"""415 for request bodies the API does not read.

The API speaks JSON (``application/json`` or a ``+json`` type); uploads are multipart. A body
sent as anything else (a form post, text/plain) is refused up front instead of being parsed
by guesswork.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from api.errors import problem

_ACCEPTED = frozenset({"application/json", "multipart/form-data"})
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _has_body(request: HttpRequest) -> bool:
    length = request.META.get("CONTENT_LENGTH") or "0"
    return not length.isdigit() or int(length) > 0 or "HTTP_TRANSFER_ENCODING" in request.META


class JsonContentTypeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.path.startswith("/api/")
            and request.method in _METHODS_WITH_BODY
            and _has_body(request)
        ):
            content_type = (request.content_type or "").lower()
            if content_type not in _ACCEPTED and not content_type.endswith("+json"):
                return problem(
                    415,
                    f"Send the body as application/json (got {content_type or 'no type'!r}).",
                )
        return self.get_response(request)
