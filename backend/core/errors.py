"""The domain's own error types.

Services and selectors raise these; one handler in ``api.errors`` maps them to RFC 9457
problem details, and the websocket consumer maps them to ``error`` frames. The domain never
imports the API layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldError:
    loc: list[str | int]
    msg: str


@dataclass
class DomainError(Exception):
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)

    status = 400
    title = "Bad request"
    code = "bad_request"

    def __str__(self) -> str:
        return self.detail or self.title


class BadRequest(DomainError):
    """Input that cannot be understood (a malformed socket frame, an offset never given out)."""

    status = 400
    title = "Bad request"
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"
    code = "unauthorized"


class PermissionDenied(DomainError):
    status = 403
    title = "Forbidden"
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"
    code = "not_found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    code = "conflict"


class Gone(DomainError):
    """It existed but is no longer available (an expired link)."""

    status = 410
    title = "Gone"
    code = "gone"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Payload too large"
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    status = 415
    title = "Unsupported media type"
    code = "unsupported_media_type"


class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"
    code = "validation_error"


@dataclass
class Throttled(DomainError):
    retry_after: int = 60

    status = 429
    title = "Too many requests"
    code = "throttled"


class ServiceUnavailable(DomainError):
    status = 503
    title = "Service unavailable"
    code = "unavailable"
