"""Socket clients for the bench, one asyncio loop per process.

The bench starts several :class:`ClientPool` processes so the client side is not what limits
a run of 5,000 sockets, and drives them with small commands over a pipe. A client reads every
frame, and for each ``event`` takes the publish time the bench put into the event's data
(``name = "b<n>-<unix time>"``), so latency runs from the moment the trigger left the bench
(REST write or bare publish) to the moment the frame was parsed here. Per socket it checks
that each event arrives exactly once and in offset order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from loadtests.wsclient import LeanSocket, open_socket


def event_name(n: int, sent_at: float) -> str:
    return f"b{n}-{sent_at:.6f}"


def parse_event_name(name: str) -> tuple[int, float]:
    n, _, sent = name[1:].partition("-")
    return int(n), float(sent)


@dataclass
class SocketState:
    token: str
    ws: LeanSocket | None = None
    offset: str | None = None
    last_seq: int = -1
    seen: dict[int, int] = field(default_factory=dict)


class ClientPool:
    """Runs in its own process; owns a share of the bench's sockets."""

    def __init__(self) -> None:
        self.sockets: list[SocketState] = []
        self.expected: set[int] = set()
        self.unique = 0
        self.deliveries = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.latencies: list[float] = []
        self.first_arrival = 0.0
        self.last_arrival = 0.0

    # --- connecting ---------------------------------------------------------------------
    async def _open(
        self, state: SocketState, url: str, topic: str, since: str | None, gate: asyncio.Semaphore
    ) -> str | None:
        async with gate:
            try:
                parts = urlsplit(url)
                ws = await open_socket(parts.hostname or "127.0.0.1", parts.port or 80, parts.path)
                ws.send(json.dumps({"type": "auth", "token": state.token}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if answer.get("type") != "auth.ok":
                    await ws.close()
                    return f"auth answered {answer}"
                subscribe: dict[str, Any] = {"type": "subscribe", "topic": topic}
                if since is not None:
                    subscribe["since"] = since
                ws.send(json.dumps(subscribe))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if frame.get("type") == "subscribed":
                        break
                    if frame.get("type") == "error":
                        await ws.close()
                        return f"subscribe answered {frame}"
                state.ws = ws
                state.offset = state.offset if since is not None else frame["offset"]
                # Whatever came after "subscribed" (a replay) first, then live, in order.
                while not ws.inbox.empty():
                    self._on_text(state, ws.inbox.get_nowait())
                ws.on_text = lambda text: self._on_text(state, text)
                return None
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"

    async def connect(
        self,
        url: str,
        tokens: list[str],
        topic: str,
        concurrency: int,
        resume: bool = False,
    ) -> dict[str, Any]:
        """Open (or, with ``resume``, reopen with ``since``) one socket per token."""
        if not resume:
            self.sockets = [SocketState(token=token) for token in tokens]
        gate = asyncio.Semaphore(concurrency)
        started = time.time()
        errors = await asyncio.gather(
            *(
                self._open(state, url, topic, state.offset if resume else None, gate)
                for state in self.sockets
            )
        )
        failures = [error for error in errors if error]
        return {
            "opened": len(self.sockets) - len(failures),
            "failed": len(failures),
            "errors": failures[:3],
            "started": started,
            "finished": time.time(),
        }

    # --- reading ------------------------------------------------------------------------
    def _on_text(self, state: SocketState, text: str) -> None:
        """Per received message: no JSON parse, the two fields the bench needs are cut out
        of the frame (every server here writes them as plain strings)."""
        if not text.startswith('{"type":"event"'):
            return
        now = time.time()
        start = text.find('"offset":"') + 10
        state.offset = text[start : text.find('"', start)]
        start = text.find('"name":"') + 8
        n, sent_at = parse_event_name(text[start : text.find('"', start)])
        self.deliveries += 1
        count = state.seen.get(n, 0)
        state.seen[n] = count + 1
        if count:
            self.duplicates += 1
            return
        # Concurrent writes may commit in any order: order is the offsets' order.
        seq = int(state.offset.rpartition(":")[2])
        if seq <= state.last_seq:
            self.out_of_order += 1
        state.last_seq = seq
        if n in self.expected:
            self.unique += 1
            self.latencies.append(now - sent_at)
            self.first_arrival = self.first_arrival or now
            self.last_arrival = now

    def expect(self, numbers: list[int]) -> dict[str, Any]:
        self.expected = set(numbers)
        self.unique = self.deliveries = self.duplicates = self.out_of_order = 0
        self.latencies = []
        self.first_arrival = self.last_arrival = 0.0
        # Events of this round that arrived before the round was declared still count.
        for state in self.sockets:
            for n in self.expected & state.seen.keys():
                self.unique += 1
                self.deliveries += state.seen[n]
        return {"ok": True}

    async def collect(self, wait_s: float) -> dict[str, Any]:
        """Wait until every open socket has every expected event once, or ``wait_s`` passed."""
        target = sum(1 for s in self.sockets if s.ws is not None) * len(self.expected)
        deadline = time.monotonic() + wait_s
        while self.unique < target and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return {
            "expected": target,
            "unique": self.unique,
            "deliveries": self.deliveries,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "latencies": self.latencies,
            "first_arrival": self.first_arrival,
            "last_arrival": self.last_arrival,
            "done": time.time(),
        }

    async def close(self) -> dict[str, Any]:
        sockets = [s for s in self.sockets if s.ws is not None]
        await asyncio.gather(*(s.ws.close() for s in sockets if s.ws), return_exceptions=True)
        for state in sockets:
            state.ws = None
        return {"closed": len(sockets)}


async def _serve(pipe: multiprocessing.connection.Connection) -> None:
    pool = ClientPool()
    loop = asyncio.get_running_loop()
    while True:
        command, kwargs = await loop.run_in_executor(None, pipe.recv)
        if command == "quit":
            await pool.close()
            pipe.send({"ok": True})
            return
        method = getattr(pool, command)
        try:
            result = method(**kwargs)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:  # the bench reports it; the process stays usable
            result = {"error": f"{type(exc).__name__}: {exc}"}
        pipe.send(result)


def _process_main(pipe: multiprocessing.connection.Connection) -> None:
    try:
        import uvloop

        uvloop.run(_serve(pipe))
    except ImportError:
        asyncio.run(_serve(pipe))


class ClientProcess:
    """The bench's handle on one client process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_process_main, args=(child,), daemon=True)
        self.process.start()

    def call(self, command: str, **kwargs: Any) -> Any:
        self.pipe.send((command, kwargs))
        result = self.pipe.recv()
        if isinstance(result, dict) and "error" in result:
            raise RuntimeError(f"client process: {command} failed: {result['error']}")
        return result

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call("quit")
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


async def call_all(
    clients: list[ClientProcess],
    command: str,
    per_client: dict[str, list[Any]] | None = None,
    **common: Any,
) -> list[Any]:
    """Send one command to every client at once: ``per_client`` values one item per client,
    ``common`` ones to all."""

    def kwargs_for(index: int) -> dict[str, Any]:
        return common | {key: values[index] for key, values in (per_client or {}).items()}

    return list(
        await asyncio.gather(
            *(
                asyncio.to_thread(client.call, command, **kwargs_for(i))
                for i, client in enumerate(clients)
            )
        )
    )
