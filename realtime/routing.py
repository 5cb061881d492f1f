"""The websocket side of the ASGI app: origin check, then /ws/v1/."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import Any
from urllib.parse import ParseResult, urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from realtime.consumer import RealtimeConsumer

PATH = "ws/v1/"


class BrowserOriginValidator(OriginValidator):
    """Refuses a socket opened by a page of a foreign origin.

    A request with no Origin header does not come from a browser page (CLI clients, load
    testers, other services) and cannot ride a user's cookies: it is let through, and the
    token in the first frame decides.
    """

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def _origin(scope: dict[str, Any]) -> ParseResult | None:
    # As Channels' OriginValidator reads it: the last Origin header, if it decodes.
    parsed = None
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            with contextlib.suppress(UnicodeDecodeError):
                parsed = urlparse(value.decode("latin1"))
    return parsed


class WebsocketApplication:
    """Channels' OriginValidator and URLRouter in one plain call.

    It returns the consumer's coroutine instead of awaiting it: every socket's stack stays
    suspended for the socket's whole life, and each ``async`` wrapper on it (the validator,
    the router, ``as_asgi``) held a coroutine frame, and the router a copy of the scope
    with its ``url_route``: about 2 KiB per socket (docs/benchmarks.md, "Memory per socket").
    """

    def __init__(self, allowed_origins: list[str]) -> None:
        self.validator = BrowserOriginValidator(None, allowed_origins)

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        if scope["type"] != "websocket":
            raise ValueError("the websocket application serves websocket scopes only")
        if not self.validator.valid_origin(_origin(scope)):
            return WebsocketDenier()(scope, receive, send)
        # URLRouter's match for path("ws/v1/"): under root_path, leading slashes dropped.
        path, root_path = scope.get("path", ""), scope.get("root_path", "")
        if not path.startswith(root_path) or path[len(root_path) :].lstrip("/") != PATH:
            raise ValueError(f"No route found for path {path!r}.")
        # The handshake's headers were needed for the origin check only; the server keeps the
        # scope for the socket's life, and a browser's headers (cookies, user agent) are KiBs.
        scope["headers"] = []
        consumer: Awaitable[None] = RealtimeConsumer()(scope, receive, send)
        return consumer


def build_websocket_application() -> WebsocketApplication:
    return WebsocketApplication([*settings.ALLOWED_HOSTS, *settings.WS_ALLOWED_ORIGINS])


websocket_application = build_websocket_application()
