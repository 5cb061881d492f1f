"""ASGI scopes for tests that call an ASGI application directly."""

from __future__ import annotations

from typing import Any


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
