"""The one place that reaches into the ASGI server under a socket (daphne or uvicorn).

ASGI gives an application one way to write: ``await send({"type": "websocket.send", ...})``.
Per frame and socket that costs the server's whole send stack (framing, UTF-8 encoding, and
under daphne Twisted's buffered write, which registers and unregisters the socket's writer
with the event loop every time); fanning one event out to thousands of sockets paid it
thousands of times. Here an event is framed once (:func:`text_frame`) and the same bytes are
written to each socket's transport synchronously: no await per socket, so one socket that
does not read cannot hold up the others.

:func:`direct_writer` recognises the servers it knows, with their state checks:

* uvicorn with ``--ws websockets-sansio``, or the lean subclass of that protocol at the end of
  this module (what ``scripts/serve.sh`` runs): its asyncio (uvloop) transport;
* daphne: autobahn's protocol on a Twisted TCP transport; when Twisted has nothing buffered
  for the socket the bytes go straight to the kernel (``socket.send``), else behind
  Twisted's buffer, in order.

It answers None for anything else (another server or protocol implementation, a negotiated
extension such as permessage-deflate, TLS terminated in the server): the consumer then uses
the portable path, ASGI ``send`` from a per-socket queue (see ``realtime.consumer``).

:func:`pending_bytes` tells how much a socket's server holds unsent, the measure the
per-socket budget (``WS_SEND_QUEUE_BYTES``) is applied to; :func:`limit_incoming_message_size`
(daphne) and :func:`close_directly` (both) cover what ASGI cannot say.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_OPCODE_TEXT = 0x81  # FIN + text


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented RFC 6455 text frame (server to client) carrying ``payload``."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", _OPCODE_TEXT, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", _OPCODE_TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _OPCODE_TEXT, 127, length)
    return header + payload


class DirectWriter(Protocol):
    def write(self, frame: bytes) -> bool:
        """Write a whole frame from :func:`text_frame`; False when the socket no longer takes
        frames (closing or closed)."""
        ...

    def buffered(self) -> int:
        """Bytes written but not yet handed to the kernel."""
        ...


class _SansioWriter:
    """uvicorn's websockets-sansio protocol: frames go to its asyncio transport."""

    __slots__ = ("protocol", "transport")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport: asyncio.Transport = protocol.transport

    def write(self, frame: bytes) -> bool:
        if self.protocol.close_sent or self.transport.is_closing():
            return False
        self.transport.write(frame)
        return True

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()


class _TwistedWriter:
    """daphne: autobahn's protocol on a plain Twisted TCP transport."""

    __slots__ = ("protocol", "transport")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport

    def write(self, frame: bytes) -> bool:
        protocol, transport = self.protocol, self.transport
        if protocol.state != protocol.STATE_OPEN or transport.disconnecting:
            return False
        if not transport.dataBuffer and not transport._tempDataBuffer:
            # Nothing queued in Twisted: straight to the kernel, as Twisted itself would on
            # its next write-ready turn, minus registering the writer and a loop iteration.
            try:
                sent = transport.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                return False  # Twisted notices the broken connection on its next read
            if sent == len(frame):
                return True
            frame = frame[sent:]
        transport.write(frame)
        return True

    def buffered(self) -> int:
        return _twisted_pending(self.transport)


def _twisted_pending(transport: Any) -> int:
    return len(transport.dataBuffer) - getattr(transport, "offset", 0) + transport._tempDataLen


def _daphne_protocol(send: Any) -> Any:
    """daphne's ``send`` is ``partial(server.handle_reply, protocol)``."""
    protocol = getattr(send, "args", (None,))[0]
    return protocol if hasattr(protocol, "sendCloseFrame") else None


def _uvicorn_protocol(send: Any) -> Any:
    """uvicorn's ``send`` is the bound method of the connection's protocol."""
    protocol = getattr(send, "__self__", None)
    module = type(protocol).__module__
    if module.startswith("uvicorn.protocols.websockets") or _is_sansio(protocol):
        return protocol
    return None


def _is_sansio(protocol: Any) -> bool:
    """uvicorn's websockets-sansio protocol, or a subclass of it (the lean one below)."""
    return isinstance(protocol, WebSocketsSansIOProtocol)


def direct_writer(send: Any) -> DirectWriter | None:
    """A writer straight to this socket's transport, or None: use ASGI ``send``."""
    with contextlib.suppress(Exception):
        protocol = _uvicorn_protocol(send)
        if protocol is not None:
            if (
                _is_sansio(protocol)
                and not protocol.conn.extensions
                and protocol.handshake_complete
                # uvloop's transports are not asyncio.Transport subclasses: ask for the API.
                and hasattr(protocol.transport, "get_write_buffer_size")
            ):
                return _SansioWriter(protocol)
            return None
        protocol = _daphne_protocol(send)
        if protocol is not None:
            transport = protocol.transport
            if (
                not protocol.websocket_extensions_in_use
                and hasattr(transport, "socket")
                and hasattr(transport, "_tempDataBuffer")
                and hasattr(transport, "dataBuffer")
            ):
                return _TwistedWriter(protocol)
    return None


def pending_bytes(send: Any) -> int:
    """Bytes this socket's server has accepted from the application but not yet written to
    the network; 0 when the server is unknown (its own flow control then applies)."""
    with contextlib.suppress(Exception):
        protocol = _uvicorn_protocol(send)
        if protocol is not None:
            return int(protocol.transport.get_write_buffer_size())
        protocol = _daphne_protocol(send)
        if protocol is not None:
            return _twisted_pending(protocol.transport)
    return 0


def limit_incoming_message_size(send: Any, limit: int) -> bool:
    """Make daphne's websocket protocol (autobahn) refuse messages over ``limit`` bytes
    itself: it closes with 1009 as the oversized message starts arriving, without buffering
    it (an application may not send 1009; autobahn only allows 1000 and 3000-4999). Set on
    this connection's protocol before the handshake completes, so it holds for every frame.
    False for other servers: the consumer's own size check then applies."""
    protocol = _daphne_protocol(send)
    if protocol is None or not hasattr(protocol, "maxMessagePayloadSize"):
        return False
    protocol.maxMessagePayloadSize = limit
    protocol.maxFramePayloadSize = limit
    # Send the close frame (1009) rather than dropping the TCP connection without a reason.
    protocol.failByDrop = False
    return True


# How long a socket closed by the server may take to answer the close frame before the
# connection is closed anyway.
CLOSE_HANDSHAKE_SECONDS = 5.0


def close_directly(send: Any, code: int, *, reserved: bool) -> bool:
    """Close the socket here when the server's own ``websocket.close`` would not do: False
    means use ``websocket.close``.

    * uvicorn (websockets-sansio) closes the TCP connection right after the close frame; if
      the client's unread frames still sit in the server's receive buffer the kernel answers
      with a reset, which destroys the close frame in flight (the client sees 1006, not the
      code). Here the close frame is sent, then only the sending side is shut (half-close),
      and the connection closes once the client has had time to read it.
    * daphne's protocol (autobahn) lets applications close with 1000 and 3000-4999 only;
      ``reserved`` codes (1012: reconnect and resubscribe with since) go out directly. Either
      way the client gets ``CLOSE_HANDSHAKE_SECONDS`` to answer, not autobahn's 1 s.
    """
    with contextlib.suppress(Exception):
        protocol = _uvicorn_protocol(send)
        if protocol is not None:
            if not _is_sansio(protocol):
                return False
            if not protocol.handshake_complete or protocol.close_sent:
                return False
            transport = protocol.transport
            if transport.is_closing():
                return False
            protocol.queue.put_nowait({"type": "websocket.disconnect", "code": code})
            protocol.conn.send_close(code, "")
            transport.write(b"".join(protocol.conn.data_to_send()))
            protocol.close_sent = True
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(CLOSE_HANDSHAKE_SECONDS, transport.close)
            return True
        protocol = _daphne_protocol(send)
        if protocol is not None:
            # autobahn aborts (TCP reset) a connection whose client has not answered the close
            # within 1 s; a busy client then loses the close frame and sees 1006.
            protocol.closeHandshakeTimeout = max(
                protocol.closeHandshakeTimeout or 0, CLOSE_HANDSHAKE_SECONDS
            )
            if reserved:
                protocol.sendCloseFrame(code=code, isReply=False)
                return True
    return False


# --- uvicorn's websockets-sansio protocol with less state per connection ----------------------
# Served with ``uvicorn --ws realtime.transport:LeanWebSocketsSansIOProtocol`` (scripts/serve.sh).
# Per idle socket uvicorn's own protocol kept an ``asyncio.Queue`` for the app's ``receive``
# (three deques and an ``asyncio.Event``, each deque a 64-slot block allocated up front), an
# ``asyncio.Event`` gating ``send`` (one more deque), and the handshake response with its
# headers for the connection's whole life: about 6 KiB of the RSS per socket at 5,000 idle
# sockets (docs/benchmarks.md, "Memory per socket"). The wire behaviour is uvicorn's; only
# these containers change. With uvicorn's own ``--ws websockets-sansio`` everything works too.


class _Waiters:
    """Futures parked until something happens; the list is made when the first one waits
    (most sockets never wait on their send gate)."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] | None = None

    def _park(self) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        return waiter

    def _unpark(self, waiter: asyncio.Future[None]) -> None:
        if self._waiters is not None and waiter in self._waiters:
            self._waiters.remove(waiter)


class LeanEvent(_Waiters):
    """The part of ``asyncio.Event`` uvicorn uses."""

    __slots__ = ("_flag",)

    def __init__(self) -> None:
        super().__init__()
        self._flag = False

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
            waiter = self._park()
            try:
                await waiter
            finally:
                self._unpark(waiter)
        return True


class LeanQueue(_Waiters):
    """The part of an unbounded ``asyncio.Queue`` uvicorn uses, on a list.

    uvicorn pauses reading while a message waits, so the list holds a message or two; getters
    are woken first come, first served, like asyncio's.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        super().__init__()
        self._items: list[Any] = []

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._wake_next()

    def _wake_next(self) -> None:
        while self._waiters:
            getter = self._waiters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> Any:
        while not self._items:
            getter = self._park()
            try:
                await getter
            except BaseException:
                getter.cancel()
                self._unpark(getter)
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
