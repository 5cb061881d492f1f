"""ASGI scopes for tests that call an ASGI application directly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from backend.core.asgi import PooledThreadsASGIHandler


def http_scope(url: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """A plain HTTP/1.1 GET of ``url`` from 127.0.0.1 to ``testserver``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


@contextmanager
def pooled_handler(threads: int = 1) -> Iterator[PooledThreadsASGIHandler]:
    """The server's ASGI handler with its request threads stopped afterwards."""
    handler = PooledThreadsASGIHandler(threads=threads)
    try:
        yield handler
    finally:
        for executor in handler.executors:
            executor.shutdown(wait=True)
