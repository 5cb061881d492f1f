"""The websocket side of the ASGI app: origin check, then /ws/v1/."""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from realtime.consumer import RealtimeConsumer


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


def build_websocket_application() -> Any:
    allowed = [*settings.ALLOWED_HOSTS, *settings.WS_ALLOWED_ORIGINS]
    router = URLRouter([path("ws/v1/", RealtimeConsumer.as_asgi())])
    return BrowserOriginValidator(router, allowed)


websocket_application = build_websocket_application()
