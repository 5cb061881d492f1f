"""A lean websocket client for the bench: just enough RFC 6455 to read many sockets cheaply.

The ``websockets`` client costs ~20-30 µs of CPU per message received; on a 2-core machine
shared with the server under test that made the client the bottleneck of a 5,000-socket
run. This one is an ``asyncio.Protocol`` that parses server frames itself (they are never
masked) and hands each text message to a callback synchronously: a few µs per message.
It speaks only what the bench needs: the handshake, text frames, ping -> pong, close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from typing import Any

_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


def _masked(opcode: int, payload: bytes) -> bytes:
    """A client frame: always masked (RFC 6455 5.3)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    key = (mask * (length // 4 + 1))[:length]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")
    return header + mask + body


class LeanSocket(asyncio.Protocol):
    def __init__(self, host: str, path: str) -> None:
        self.host, self.path = host, path
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.handshake_done = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        # Until ``on_text`` is set, messages queue for recv() (handshake-time replies).
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.on_text: Callable[[str], None] | None = None

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshake_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.handshake_done = True
            self.opened.set_result(None)
        self._parse()

    def _parse(self) -> None:
        buffer = self.buffer
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = struct.unpack_from("!H", buffer, offset + 2)[0]
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = struct.unpack_from("!Q", buffer, offset + 2)[0]
                start = offset + 10
            if size < start + length:
                break
            payload = bytes(buffer[start : start + length])
            offset = start + length
            self._frame(first & 0x0F, payload)
        if offset:
            del buffer[:offset]

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == _TEXT:
            text = payload.decode()
            if self.on_text is not None:
                self.on_text(text)
            else:
                self.inbox.put_nowait(text)
        elif opcode == _PING:
            self.transport.write(_masked(_PONG, payload))  # type: ignore[union-attr]
        elif opcode == _CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.transport.write(_masked(_CLOSE, payload[:2]))  # type: ignore[union-attr]
            self.transport.close()  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # --- the bench's API -------------------------------------------------------------------
    def send(self, text: str) -> None:
        self.transport.write(_masked(_TEXT, text.encode()))  # type: ignore[union-attr]

    async def recv(self) -> str:
        if self.closed.done() and self.inbox.empty():
            raise ConnectionError(f"closed ({self.close_code})")
        getter = asyncio.ensure_future(self.inbox.get())
        waiting: set[asyncio.Future[Any]] = {getter, self.closed}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        raise ConnectionError(f"closed ({self.close_code})")

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(_masked(_CLOSE, struct.pack("!H", 1000)))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), 2)
        except TimeoutError:
            self.transport.abort()


async def open_socket(host: str, port: int, path: str, wait_s: float = 30) -> LeanSocket:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: LeanSocket(f"{host}:{port}", path), host, port), wait_s
    )
    await asyncio.wait_for(protocol.opened, wait_s)
    return protocol
