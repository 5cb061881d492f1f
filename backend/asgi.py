"""ASGI entry point: HTTP through Django, websockets through the realtime consumer."""

from __future__ import annotations

import os
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
# Django must be set up before the consumer (and its models) are imported.
django.setup(set_prefix=False)

from backend.core.asgi import PooledThreadsASGIHandler  # noqa: E402

django_http: Any = PooledThreadsASGIHandler()

from django.conf import settings  # noqa: E402

if settings.SENTRY_DSN:
    # sentry-sdk patches Django's own ASGIHandler.__call__, which the pooled handler overrides:
    # wrap it the same way, so request events carry the URL, method and headers.
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    django_http = SentryAsgiMiddleware(django_http, unsafe_context_data=True)

from channels.routing import ProtocolTypeRouter  # noqa: E402

from backend.core import body_limit, server_gc  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

# Oversized bodies are refused (413) before they are read: daphne's request is patched,
# servers that stream the body to the application (uvicorn) meet the middleware.
body_limit.install()

application = ProtocolTypeRouter(
    {"http": body_limit.BodyLimitMiddleware(django_http), "websocket": websocket_application}
)

# Last: everything start-up created is in place (backend/core/server_gc.py says why).
server_gc.tune_for_server()
