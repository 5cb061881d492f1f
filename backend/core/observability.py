"""Request ids for logs and responses.

Every request gets an id (the caller's ``X-Request-ID`` when it is sane, else a new one);
it is echoed in the response header and added to every log record made while the request
is served, so one grep follows a request through the JSON logs.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from pythonjsonlogger import json as pythonjsonlogger_json

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id_for(request: HttpRequest) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets the request id for the request's logs; works on the sync and async paths."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.async_mode:
            return self.__acall__(request)
        token = request_id_var.set(_request_id_for(request))
        request.request_id = request_id_var.get()  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
            return response
        finally:
            request_id_var.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        token = request_id_var.set(_request_id_for(request))
        request.request_id = request_id_var.get()  # type: ignore[attr-defined]
        try:
            response = await self.get_response(request)
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
            return response
        finally:
            request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(pythonjsonlogger_json.JsonFormatter):
    """python-json-logger's formatter, same output, one JSON encoder kept instead of a new one
    per record (each request logs one access record)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder: json.JSONEncoder | None = None
        if self.json_serializer is json.dumps and self.json_indent is None:
            encoder_class = self.json_encoder or json.JSONEncoder
            self._encoder = encoder_class(
                default=self.json_default, ensure_ascii=self.json_ensure_ascii
            )

    def jsonify_log_record(self, log_data: Any) -> str:
        if self._encoder is None:
            return super().jsonify_log_record(log_data)
        return self._encoder.encode(log_data)
