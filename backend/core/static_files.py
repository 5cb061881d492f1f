"""Static files served by the server process itself (``SERVE_STATIC``, e.g. ``make run``).

Django's handler lets a path that escapes the static directory (``/static/..%2fx``,
``%2e%2e`` and the like) raise ``SuspiciousFileOperation``, which it does not catch: a 500
with a logged stack trace for any client that asks. Such a path names no static file, so it
is a 404 like any other missing one.
"""

from __future__ import annotations

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse


class SafeASGIStaticFilesHandler(ASGIStaticFilesHandler):
    def serve(self, request: HttpRequest) -> HttpResponse | FileResponse:
        try:
            return super().serve(request)
        except (SuspiciousOperation, ValueError) as exc:  # ValueError: e.g. a NUL in the path
            raise Http404("No such static file.") from exc
