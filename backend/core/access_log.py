"""One access log record per HTTP request, through Django's LOGGING (JSON lines by default).

The ASGI servers' own access logs are off (daphne's is not structured); this one carries the
request id like every other log line, so an nginx line, the request's lines and the jobs it
queued share one id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("triton.access")


def _log(request: HttpRequest, status: int, started: float) -> None:
    logger.info(
        "%s %s %s",
        request.method,
        request.path,
        status,
        extra={
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "remote_addr": request.META.get("REMOTE_ADDR", ""),
        },
    )


class AccessLogMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if iscoroutinefunction(self):
            return self.__acall__(request)  # type: ignore[attr-defined]
        started = time.monotonic()
        response = self.get_response(request)
        _log(request, response.status_code, started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = await self.get_response(request)
        _log(request, response.status_code, started)
        return response
