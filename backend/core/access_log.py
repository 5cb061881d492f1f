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
    if not logger.isEnabledFor(logging.INFO):
        return
    # The record is made here rather than by logger.info(), which walks the stack to find
    # the caller (a field no log format here shows): the same record, for less per request.
    method, path = request.method, request.path
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        _LINE,
        "%s %s %s",
        (method, path, status),
        None,
        "_log",
        {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "remote_addr": request.META.get("REMOTE_ADDR", ""),
        },
    )
    logger.handle(record)


_LINE = _log.__code__.co_firstlineno


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
