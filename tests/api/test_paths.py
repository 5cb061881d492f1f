"""Paths that try to leave /static/ or /media/ are a 404, never a 500 with a stack trace.

Against a real daphne process that serves /static/ itself (SERVE_STATIC, as ``make run``
does), over a raw socket: HTTP clients would normalise the dot segments away.
"""

from __future__ import annotations

import socket

import pytest

from tests.e2e.conftest import Server, ServerPool

pytestmark = pytest.mark.e2e

ESCAPES = [
    "/static/..%2fx",
    "/static/../x",
    "/static/%2e%2e/x",
    "/static/%2e%2e%2fx",
    "/static/.%2e/settings.py",
    "/static/..%2f..%2fsettings.py",
    "/static/admin/..%2f..%2f..%2fsettings.py",
    "/static/%2e%2e%5csettings.py",
    "/static/x%00",
    "/media/..%2fx",
    "/media/../x",
    "/media/%2e%2e/x",
    "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
]


def raw_get(server: Server, path: str) -> int:
    """The status of ``GET <path>`` sent byte for byte as given."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def static_server(server_pool_here: ServerPool) -> Server:
    return server_pool_here.get("static", SERVE_STATIC="true")


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_escaping_static_or_media_are_not_found(static_server: Server, path: str) -> None:
    mark = static_server.log_size()
    assert raw_get(static_server, path) == 404
    assert "Traceback" not in static_server.log_text(mark)


def test_static_files_are_still_served(static_server: Server) -> None:
    assert raw_get(static_server, "/static/admin/css/base.css") == 200
