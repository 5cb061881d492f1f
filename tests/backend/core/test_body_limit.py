"""The request body limit is read once, and follows FILE_UPLOAD_MAX_BYTES when it changes."""

from __future__ import annotations

from typing import Any

from backend.core import body_limit


def test_the_limit_is_cached_and_follows_the_setting(settings: Any) -> None:
    settings.FILE_UPLOAD_MAX_BYTES = 1000
    assert body_limit.max_request_body_bytes() == 1000 + body_limit.MULTIPART_OVERHEAD_BYTES
    assert body_limit.max_request_body_bytes.cache_info().currsize == 1  # read once, kept
    settings.FILE_UPLOAD_MAX_BYTES = 2000
    assert body_limit.max_request_body_bytes() == 2000 + body_limit.MULTIPART_OVERHEAD_BYTES
