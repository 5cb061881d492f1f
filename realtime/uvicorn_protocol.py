"""uvicorn's websockets-sansio protocol with less state per connection.

Served with ``uvicorn --ws realtime.uvicorn_protocol:LeanWebSocketsSansIOProtocol``. Per idle
socket uvicorn's own protocol kept an ``asyncio.Queue`` for the app's ``receive`` (three deques
and an ``asyncio.Event``, each deque a 64-slot block allocated up front), an ``asyncio.Event``
gating ``send`` (one more deque), and the handshake response with its headers for the
connection's whole life. Measured on fresh servers at 5,000 idle subscribed sockets, that was
about 6 KiB of the RSS per socket (docs/benchmarks.md, "Memory per socket"). The wire
behaviour is uvicorn's: only these containers change.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class LeanEvent:
    """The part of ``asyncio.Event`` uvicorn uses; the waiter list is made when someone waits."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> bool:
        while not self._flag:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if self._waiters is not None and waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True


class LeanQueue:
    """The part of an unbounded ``asyncio.Queue`` uvicorn uses, on a list.

    uvicorn pauses reading while a message waits, so the list holds a message or two; getters
    are woken first come, first served, like asyncio's.
    """

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_next()

    def _wake_next(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    # Woken, then cancelled: pass the wake-up on, as asyncio.Queue does.
                    self._wake_next()
                raise
        item = self._items.pop(0)
        if self._items:
            self._wake_next()
        return item


class LeanWebSocketsSansIOProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # Written to the client: uvicorn does not read the response again.
            self.response = None  # type: ignore[assignment]
