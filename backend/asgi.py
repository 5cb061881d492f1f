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

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from realtime.routing import websocket_application  # noqa: E402

if settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_http = ASGIStaticFilesHandler(django_http)

application = ProtocolTypeRouter({"http": django_http, "websocket": websocket_application})
