"""ASGI entry point: HTTP through Django, websockets through the realtime consumer."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
# Django must be set up before the consumer (and its models) are imported.
django_http = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from backend.core import body_limit  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

# Under daphne, oversized bodies are refused (413) before they are read.
body_limit.install()

if settings.SERVE_STATIC:
    from backend.core.static_files import SafeASGIStaticFilesHandler

    django_http = SafeASGIStaticFilesHandler(django_http)

application = ProtocolTypeRouter({"http": django_http, "websocket": websocket_application})
