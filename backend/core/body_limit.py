"""413 for oversized request bodies, before the body is read, under daphne and uvicorn.

uvicorn hands the body to the application as it arrives, so :class:`BodyLimitMiddleware`
(ASGI) answers a declared ``Content-Length`` over the limit before asking for the body (no
``100 Continue`` is sent either), and cuts a chunked body off once its bytes pass the limit.

Twisted (under daphne) receives a request's whole body into a temporary file before the ASGI
application sees the request, so no Django middleware can refuse an upload "before reading
it": by then it is on disk. This hooks daphne's request object where Twisted learns the
body's length: a ``Content-Length`` over the limit is answered at once with a 413 problem
(nothing of the body is stored), and a body without a length (chunked) is cut off as soon as
its bytes pass the limit. The connection is then half-closed: the response is flushed, what
the client still sends is discarded for a short while (so it reads the 413 instead of a
reset), then the connection is dropped.

The limit is the upload limit plus room for the multipart envelope, for every path: no JSON
request comes near it. ``install()`` runs from ``backend/asgi.py``. It is server wiring, not
API: it answers in raw HTTP and knows nothing of views.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger("triton.api")

# Room for the multipart envelope (boundaries, part headers, other small fields).
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def max_upload_bytes() -> int:
    return int(settings.FILE_UPLOAD_MAX_BYTES)


# Cached: every request asks (a settings read per request was about 2 % of a small
# request's CPU on the event loop); forgotten when a test changes the setting.
@functools.cache
def max_request_body_bytes() -> int:
    """The largest request body any path accepts."""
    return max_upload_bytes() + MULTIPART_OVERHEAD_BYTES


@receiver(setting_changed)
def _forget_request_body_limit(*, setting: str, **_: Any) -> None:
    if setting == "FILE_UPLOAD_MAX_BYTES":
        max_request_body_bytes.cache_clear()


# How long (seconds) and how much (bytes) of a refused body is drained before the drop.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 8 * 1024 * 1024


class _Discard:
    """Stands in for the request's content file once the body is refused."""

    closed = False

    def __init__(self) -> None:
        self.discarded = 0

    def write(self, data: bytes) -> None:
        self.discarded += len(data)

    def read(self, size: int = -1) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def _problem_body(limit: int) -> bytes:
    return json.dumps(
        {
            "type": "https://triton.dev/problems/payload-too-large",
            "title": "Payload too large",
            "status": 413,
            "detail": f"Request bodies may be at most {limit} bytes.",
        }
    ).encode()


def _response_bytes(limit: int) -> bytes:
    body = _problem_body(limit)
    head = (
        "HTTP/1.1 413 Payload Too Large\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode()
    return head + body


def install(limit: Callable[[], int] = max_request_body_bytes) -> bool:
    """Patch daphne's request class once; False when daphne is not importable."""
    try:
        from daphne.http_protocol import WebRequest
        from twisted.internet import reactor
    except ImportError:
        return False
    if getattr(WebRequest, "_triton_body_limit", None) is not None:
        WebRequest._triton_body_limit = staticmethod(limit)
        return True

    original_got_length = WebRequest.gotLength
    original_content_chunk = WebRequest.handleContentChunk
    original_process = WebRequest.process

    def refuse(request: Any) -> None:
        request._triton_refused = True
        previous = getattr(request, "content", None)
        if previous is not None and not isinstance(previous, _Discard):
            previous.close()
        request.content = _Discard()
        transport = getattr(request.channel, "transport", None)
        if transport is None:
            return
        peer = transport.getPeer()
        logger.warning(
            "refused an oversized request body from %s:%s",
            getattr(peer, "host", "?"),
            getattr(peer, "port", "?"),
        )
        transport.write(_response_bytes(WebRequest._triton_body_limit()))
        try:
            transport.loseWriteConnection()
        except (AttributeError, NotImplementedError):  # not TCP (e.g. TLS wrapper)
            transport.loseConnection()
            return
        cast(Any, reactor).callLater(LINGER_SECONDS, transport.abortConnection)

    def got_length(self: Any, length: int | None) -> None:
        self._triton_received = 0
        self._triton_refused = False
        # Twisted would read a whole multipart or form body into memory and parse it into
        # ``request.args``, which daphne never uses (Django parses the body itself, streaming
        # to a temporary file): a 20 MiB upload cost about 250 MB of peak memory.
        self._parsePOSTFormSubmission = False
        if length is not None and length > WebRequest._triton_body_limit():
            refuse(self)
            return
        original_got_length(self, length)

    def handle_content_chunk(self: Any, data: bytes) -> None:
        if getattr(self, "_triton_refused", False):
            self.content.write(data)
            if self.content.discarded > LINGER_MAX_BYTES and self.channel is not None:
                self.channel.transport.abortConnection()
            return
        self._triton_received = getattr(self, "_triton_received", 0) + len(data)
        if self._triton_received > WebRequest._triton_body_limit():
            refuse(self)
            return
        original_content_chunk(self, data)

    def process(self: Any) -> Any:
        if getattr(self, "_triton_refused", False):
            return None  # answered already; the application never sees this request
        return original_process(self)

    def send_100_continue(self: Any) -> None:
        # Twisted sends "100 Continue" right after gotLength: not after a refusal.
        request = self.requests[-1] if self.requests else None
        if request is not None and getattr(request, "_triton_refused", False):
            return
        original_send_100(self)

    from twisted.web.http import HTTPChannel

    original_send_100 = HTTPChannel._send100Continue
    setattr(HTTPChannel, "_send100Continue", send_100_continue)  # noqa: B010
    WebRequest.gotLength = got_length
    WebRequest.handleContentChunk = handle_content_chunk
    WebRequest.process = process
    WebRequest._triton_body_limit = staticmethod(limit)
    return True


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """The same limit for servers that stream the body into the application (uvicorn).

    A declared length over the limit is answered before the body is asked for; a chunked body
    reaches the application as an ``http.disconnect`` once it passes the limit (Django stops
    reading and answers nothing), and the 413 goes out instead. Under daphne the patched
    request above refuses first, so this never triggers there.
    """

    def __init__(self, app: ASGIApp, limit: Callable[[], int] = max_request_body_bytes) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            logger.warning("refused a declared %d-byte request body", declared)
            await self._refuse(send, limit)
            return
        received = 0
        refused = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    logger.warning("cut off a request body past %d bytes", limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the application's answer to a body it never got whole
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if refused and not started:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = _problem_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
