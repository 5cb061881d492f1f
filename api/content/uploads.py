"""Upload size limits inside Django (the server-level guard is ``backend.core.body_limit``).

``FILE_UPLOAD_MAX_BYTES`` is checked twice: against ``Content-Length`` before the body is
parsed, and on the bytes themselves while the multipart parser streams them to a temporary
file, so a body without a length (or lying about it) is stopped as soon as it is too big.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest

from backend.core.body_limit import max_request_body_bytes, max_upload_bytes
from backend.core.errors import PayloadTooLarge


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(detail=f"Files may be at most {max_upload_bytes()} bytes.")


def refuse_declared_oversize(request: HttpRequest) -> None:
    """413 when Content-Length already says the body is too big (nothing read yet)."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > max_request_body_bytes():
        raise _too_large()


class SizeLimitUploadHandler(FileUploadHandler):
    """Counts each file's bytes as they stream by and stops the upload past the limit.
    Placed first, ahead of Django's memory/temporary-file handlers."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = max_upload_bytes()
        self.received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            raise _too_large()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
