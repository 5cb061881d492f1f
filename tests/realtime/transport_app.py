"""A bare ASGI websocket app for tests/realtime/test_transport.py, served by real uvicorn and
daphne processes: it reports whether realtime.transport found a direct writer for the socket,
and writes bursts through it interleaved with ordinary ASGI sends."""

from __future__ import annotations

import json
from typing import Any

from realtime.transport import close_directly, direct_writer, pending_bytes, text_frame


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    writer = direct_writer(send)
    await send({"type": "websocket.send", "text": json.dumps({"direct": writer is not None})})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        command = json.loads(message["text"])
        if command["do"] == "burst":
            # Direct frames and ASGI sends must reach the client in program order.
            for n in range(command["count"]):
                text = json.dumps({"n": n, "pad": "x" * command.get("pad", 0)})
                if writer is not None and n % 2 == 0:
                    assert writer.write(text_frame(text.encode()))
                else:
                    await send({"type": "websocket.send", "text": text})
            await send({"type": "websocket.send", "text": json.dumps({"done": True})})
        elif command["do"] == "pending":
            pad = "y" * command["bytes"]
            frame = text_frame(json.dumps({"pad": pad}).encode())
            for _ in range(command["frames"]):
                writer.write(frame) if writer else None
            await send(
                {
                    "type": "websocket.send",
                    "text": json.dumps(
                        {
                            "pending": pending_bytes(send),
                            "buffered": writer.buffered() if writer else 0,
                        }
                    ),
                }
            )
        elif command["do"] == "close":
            if not close_directly(send, 4008, reserved=False):
                await send({"type": "websocket.close", "code": 4008})
            return
