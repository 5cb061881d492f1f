"""Content-Security-Policy for every response (Django 5.2 has none built in).

Pages (the admin site, the /dashboard/ page) get a strict policy: scripts, styles, fonts and
images only from Triton's own origin (and the static files' CDN origin when ``STATIC_URL`` names
one), no inline code, no plugins, no framing, forms and XHR/websocket only to the same origin.
Every other response (JSON, problem+json, files) gets ``default-src 'none'``: nothing it might
contain runs or loads anything if a browser is tricked into rendering it. A response that sets
its own policy keeps it; paths under ``CSP_EXEMPT_PATHS`` get none.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"
NON_PAGE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def _static_origin() -> str:
    """The origin of STATIC_URL when it is absolute (a CDN), else empty."""
    parts = urlsplit(settings.STATIC_URL or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def page_policy(request: HttpRequest) -> str:
    static = _static_origin()
    own = "'self'" + (f" {static}" if static else "")
    # 'self' covers ws(s):// of the same host in current browsers; named for the older ones.
    socket_scheme = "wss" if request.is_secure() else "ws"
    directives = {
        "default-src": "'self'",
        "script-src": own,
        "style-src": own,
        "img-src": f"{own} data:",
        "font-src": own,
        "connect-src": f"'self' {socket_scheme}://{request.get_host()}",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if HEADER in response or request.path.startswith(tuple(settings.CSP_EXEMPT_PATHS)):
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html"):
            response[HEADER] = page_policy(request)
        else:
            response[HEADER] = NON_PAGE_POLICY
        return response
