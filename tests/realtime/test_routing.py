"""The websocket application's own routing (realtime/routing.py): one path, under root_path."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from realtime.routing import websocket_application


def _scope(path: str, root_path: str = "") -> dict[str, Any]:
    return {"type": "websocket", "path": path, "root_path": root_path, "headers": []}


async def _never(*_: Any) -> None:
    raise AssertionError("not called: the socket is not run here")


@pytest.mark.parametrize(
    ("path", "root_path"),
    [("/ws/v1/", ""), ("ws/v1/", ""), ("/triton/ws/v1/", "/triton")],
)
def test_the_socket_path_reaches_the_consumer(path: str, root_path: str) -> None:
    consumer = websocket_application(_scope(path, root_path), _never, _never)
    assert inspect.iscoroutine(consumer)
    consumer.close()  # built, not run


@pytest.mark.parametrize(
    ("path", "root_path"),
    [("/ws/v2/", ""), ("/ws/v1/extra/", ""), ("/ws/v1", ""), ("/ws/v1/", "/triton")],
)
def test_other_paths_are_refused_as_channels_router_refuses_them(path: str, root_path: str) -> None:
    with pytest.raises(ValueError, match="No route found"):
        websocket_application(_scope(path, root_path), _never, _never)


def test_other_scope_types_are_refused() -> None:
    with pytest.raises(ValueError, match="websocket scopes only"):
        websocket_application({"type": "http", "path": "/ws/v1/"}, _never, _never)


def test_the_handshakes_headers_are_not_kept_for_the_sockets_life() -> None:
    """The server keeps the scope as long as the socket: a browser's cookies and user agent
    would cost every idle socket KiBs (the origin check has read them by then)."""
    scope = _scope("/ws/v1/") | {"headers": [(b"host", b"testserver"), (b"cookie", b"x" * 4000)]}
    consumer = websocket_application(scope, _never, _never)
    consumer.close()
    assert scope["headers"] == []
