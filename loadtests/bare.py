"""The ceiling: a bare ``websockets`` broadcast server speaking the same socket protocol.

``python -m loadtests.bare --port P`` serves ``/ws/v1/``-shaped frames with no database, no
Django and no channel layer: ``auth`` is answered at once, ``subscribe`` adds the socket to
the topic's set, and a ``publish`` frame (sent by the bench, the stand-in for a REST write)
serializes one ``event`` frame and hands it to :func:`websockets.broadcast`. It keeps the
last events of each topic, so ``since`` works as it does on Triton. The bench runs it beside
Triton in the same run, so every Triton figure stands next to what plain Python can do on
this machine at the same moment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict, deque
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

EPOCH = "bare"
_subscribers: dict[str, set[ServerConnection]] = defaultdict(set)
_history: dict[str, deque[tuple[int, str]]] = defaultdict(lambda: deque(maxlen=1000))
_seq: dict[str, int] = defaultdict(int)


def _event_frame(topic: str, seq: int, event: str, data: Any) -> str:
    return json.dumps(
        {
            "type": "event",
            "topic": topic,
            "event": event,
            "offset": f"{EPOCH}:{seq}",
            "data": data,
        },
        separators=(",", ":"),
    )


async def _handler(ws: ServerConnection) -> None:
    topics: set[str] = set()
    try:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "auth":
                await ws.send('{"type":"auth.ok","user_id":1}')
            elif kind == "subscribe":
                topic = frame["topic"]
                _subscribers[topic].add(ws)
                topics.add(topic)
                answer = {
                    "type": "subscribed",
                    "topic": topic,
                    "offset": f"{EPOCH}:{_seq[topic]}",
                    "recovered": True,
                }
                await ws.send(json.dumps(answer, separators=(",", ":")))
                since = frame.get("since")
                if since:
                    after = int(str(since).rpartition(":")[2])
                    for seq, text in list(_history[topic]):
                        if seq > after:
                            await ws.send(text)
            elif kind == "publish":
                topic = frame["topic"]
                _seq[topic] += 1
                seq = _seq[topic]
                text = _event_frame(topic, seq, frame["event"], frame["data"])
                _history[topic].append((seq, text))
                broadcast(_subscribers[topic], text)
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
    finally:
        for topic in topics:
            _subscribers[topic].discard(ws)


async def _main(host: str, port: int) -> None:
    async with serve(
        _handler, host, port, compression=None, max_size=2**20, ping_interval=None, backlog=4096
    ):
        await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description="bare websockets broadcast server (ceiling)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop  # the loop Triton's default server runs on: same footing

        uvloop.run(_main(args.host, args.port))
    except ImportError:
        asyncio.run(_main(args.host, args.port))


if __name__ == "__main__":
    main()
