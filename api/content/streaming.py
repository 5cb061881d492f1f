"""Sending stored objects to clients without holding them in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

CHUNK_BYTES = 64 * 1024


async def _chunks(fileobj: IO[bytes]) -> AsyncIterator[bytes]:
    # An async iterator: daphne sends each chunk as it is read. (FileResponse's sync iterator
    # would be read whole into memory first under ASGI.)
    read = sync_to_async(fileobj.read, thread_sensitive=False)
    try:
        while chunk := await read(CHUNK_BYTES):
            yield chunk
    finally:
        await sync_to_async(fileobj.close, thread_sensitive=False)()


def stream_file(
    fileobj: IO[bytes], *, content_type: str, disposition: str, size: int | None = None
) -> StreamingHttpResponse:
    """A download: the bytes under a fixed type, never sniffed by the browser, never run as a
    page of this origin."""
    response = StreamingHttpResponse(_chunks(fileobj), content_type=content_type)
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    if size is not None:
        response["Content-Length"] = str(size)
    return response
