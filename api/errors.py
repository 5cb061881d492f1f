"""RFC 9457 problem details for every error under /api/.

One place maps the domain's errors, django-ninja's errors and Django's own (404, 405, bad
JSON, lost database) to ``application/problem+json``. The middleware catches what never
reaches a ninja view: unknown routes, wrong methods, and anything Django answered itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from kombu.exceptions import OperationalError as BrokerUnavailable
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.core.errors import DomainError, FieldError, Throttled

logger = logging.getLogger("triton.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://triton.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "gone",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "throttled",
    500: "internal-error",
    503: "service-unavailable",
}


class ProblemFieldOut(Schema):
    loc: list[str | int]
    msg: str


class ProblemOut(Schema):
    """RFC 9457 problem details, served as ``application/problem+json``."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldOut] | None = None


def title_for(status: int) -> str:
    return _TITLES.get(status, "Error")


def problem_responses(*statuses: int) -> dict[int, type[ProblemOut]]:
    """OpenAPI documentation of an operation's error answers: ``response={200: X,
    **problem_responses(404, 422)}``. The handlers below produce the bodies."""
    return dict.fromkeys(statuses, ProblemOut)


# Redis (cache, throttles) or the Celery broker gone: the client may retry, it did nothing wrong.
_DEPENDENCY_DOWN = (
    ConnectionError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    BrokerUnavailable,
)

# MySQL client errors that mean "the database is gone", not "your input is wrong".
_DB_LOST_CODES = {2002, 2003, 2006, 2013, 2055}

# Seconds a client is told to wait (Retry-After) when a dependency is down: about the time a
# restarted MariaDB or Redis takes to answer again, short enough not to strand clients.
RETRY_AFTER_UNAVAILABLE = 5


def problem(
    status: int,
    detail: str = "",
    *,
    errors: list[FieldError] | list[dict[str, Any]] | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + _SLUGS.get(status, "error"),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or title or _TITLES.get(status, "Error"),
    }
    if errors:
        body["errors"] = [
            {"loc": e.loc, "msg": e.msg} if isinstance(e, FieldError) else e for e in errors
        ]
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def domain_error_response(exc: DomainError) -> HttpResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    if exc.status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}
    return problem(exc.status, exc.detail, errors=exc.errors, title=exc.title, headers=headers)


def _validation_errors(exc: NinjaValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors:
        loc = [part for part in error.get("loc", ()) if part != "payload" or len(error["loc"]) == 1]
        errors.append({"loc": loc, "msg": str(error.get("msg", "Invalid value"))})
    return errors


def _is_database_lost(exc: BaseException) -> bool:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return isinstance(exc, OperationalError) and (code in _DB_LOST_CODES or code is None)


def install(api: NinjaAPI) -> None:
    """Register the handlers on the NinjaAPI instance."""

    @api.exception_handler(NinjaValidationError)
    def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = _validation_errors(exc)
        # Unparsable JSON is malformed input (400), not a failed validation (422).
        if any("json" in e["msg"].lower() and "decode" in e["msg"].lower() for e in errors):
            return problem(400, "The request body is not valid JSON.", errors=errors)
        return problem(422, "The request did not pass validation.", errors=errors)

    @api.exception_handler(AuthenticationError)
    def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = problem(401, "A valid bearer token is required.")
        response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return problem(exc.status_code, str(exc))

    @api.exception_handler(Exception)
    def on_any_other(request: HttpRequest, exc: Exception) -> HttpResponse:
        return exception_response(request, exc)


def exception_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The problem for an exception, wherever under /api/ it was raised (ninja views and
    the middleware alike): the domain's own errors, client errors Django detected, a lost
    dependency (503), and anything else (500, logged with the request id)."""
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    if isinstance(exc, Http404):
        return problem(404, "Not found.")
    if isinstance(exc, SuspiciousOperation):
        return suspicious_response(exc)
    if _is_database_lost(exc):
        logger.error("database unavailable", exc_info=exc)
        return unavailable("The database is unavailable; try again shortly.")
    if isinstance(exc, _DEPENDENCY_DOWN):
        logger.error("dependency unavailable", exc_info=exc)
        return unavailable("A dependency is unavailable; try again shortly.")
    logger.exception("unexpected error serving %s %s", request.method, request.path)
    return problem(500, "An unexpected error occurred; it has been logged.")


def unavailable(detail: str) -> HttpResponse:
    """503 with Retry-After: the client did nothing wrong and may try again shortly."""
    return problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)})


def suspicious_response(exc: SuspiciousOperation) -> HttpResponse:
    """Django refuses oversized or malformed requests with these; they are the client's."""
    if isinstance(exc, RequestDataTooBig):
        return problem(413, "The request body is too large.")
    return problem(400, "The request is malformed.")


class ProblemDetailsMiddleware:
    """Turns Django's own error answers under /api/ into problem details."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.prefix = "/api/"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(self.prefix) or response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        if content_type.startswith(PROBLEM_CONTENT_TYPE):
            return response
        status = response.status_code
        detail = {
            404: "No such route.",
            405: f"Method {request.method} is not allowed here.",
        }.get(status, "")
        replacement = problem(status, detail)
        if status == 405 and response.has_header("Allow"):
            replacement["Allow"] = response["Allow"]
        return replacement

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith(self.prefix):
            return None
        unexpected = not isinstance(exc, DomainError | Http404 | SuspiciousOperation)
        if unexpected and settings.DEBUG:
            return None  # Django's debug page
        return exception_response(request, exc)
