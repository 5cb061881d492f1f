"""realtime.transport: frames built once and written straight to uvicorn's and daphne's
transports (real server processes), and the portable fallback everywhere else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import OP_TEXT, Frame
from websockets.streams import StreamReader

from realtime.transport import (
    close_directly,
    direct_writer,
    limit_incoming_message_size,
    pending_bytes,
    text_frame,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
APP = "tests.realtime.transport_app:app"


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frame_is_what_a_client_parses(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    assert frame.opcode == OP_TEXT and frame.fin and frame.data == payload


def test_unknown_servers_get_the_portable_path() -> None:
    async def send(message: dict) -> None:
        return None

    assert direct_writer(send) is None
    assert pending_bytes(send) == 0
    assert limit_incoming_message_size(send, 1024) is False
    assert close_directly(send, 1012, reserved=True) is False
    assert close_directly(send, 4008, reserved=False) is False


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


COMMANDS = {
    "uvicorn": lambda port: [
        str(BIN / "uvicorn"), APP, "--port", str(port), "--ws", "websockets-sansio",
        "--ws-per-message-deflate", "false", "--lifespan", "off", "--loop", "uvloop",
    ],
    # What scripts/serve.sh runs: the same protocol, leaner state (realtime/transport.py).
    "uvicorn-lean": lambda port: [
        str(BIN / "uvicorn"), APP, "--port", str(port),
        "--ws", "realtime.transport:LeanWebSocketsSansIOProtocol",
        "--ws-per-message-deflate", "false", "--lifespan", "off", "--loop", "uvloop",
    ],
    "uvicorn-deflate": lambda port: [
        str(BIN / "uvicorn"), APP, "--port", str(port), "--ws", "websockets-sansio",
        "--lifespan", "off",
    ],
    "uvicorn-legacy": lambda port: [
        str(BIN / "uvicorn"), APP, "--port", str(port), "--ws", "websockets", "--lifespan", "off",
    ],
    "daphne": lambda port: [str(BIN / "daphne"), "-p", str(port), APP],
}  # fmt: skip


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, int]]:
    started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, command in COMMANDS.items():
        port = _free_port()
        started[name] = (
            subprocess.Popen(
                command(port),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            port,
        )
    try:
        for _name, (process, port) in started.items():
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, f"{_name} exited"
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{_name} did not start"
                    time.sleep(0.1)
        yield {name: port for name, (_, port) in started.items()}
    finally:
        for process, _ in started.values():
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)


async def _open(port: int, deflate: bool = False) -> tuple[ClientConnection, bool]:
    ws = await connect(
        f"ws://127.0.0.1:{port}/",
        extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
        compression=None,
        max_size=None,
    )
    hello = json.loads(await ws.recv())
    return ws, hello["direct"]


@pytest.mark.parametrize(
    ("server", "direct"),
    [("uvicorn", True), ("uvicorn-lean", True), ("daphne", True), ("uvicorn-legacy", False)],
)
async def test_direct_frames_and_asgi_sends_arrive_in_order(
    servers: dict[str, int], server: str, direct: bool
) -> None:
    ws, is_direct = await _open(servers[server])
    assert is_direct is direct
    await ws.send(json.dumps({"do": "burst", "count": 500, "pad": 3000}))
    received = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(501)]
    assert [frame.get("n") for frame in received[:-1]] == list(range(500))
    assert received[-1] == {"done": True}
    await ws.close()


async def test_a_negotiated_extension_falls_back_to_asgi_send(servers: dict[str, int]) -> None:
    ws, is_direct = await _open(servers["uvicorn-deflate"], deflate=True)
    assert is_direct is False
    await ws.send(json.dumps({"do": "burst", "count": 10}))
    received = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(11)]
    assert received[-1] == {"done": True}
    await ws.close()


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-lean", "daphne"])
async def test_unread_bytes_are_counted(servers: dict[str, int], server: str) -> None:
    """A client that does not read: what the writer could not hand to the kernel shows in
    both measures the consumer's budget uses."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", servers[server]))
    ws = await connect(f"ws://127.0.0.1:{servers[server]}/", sock=sock, compression=None,
                       max_size=None, max_queue=1)  # fmt: skip
    assert json.loads(await ws.recv())["direct"] is True
    # ~8 MB at once: more than the kernel's buffers on both ends.
    await ws.send(json.dumps({"do": "pending", "bytes": 100_000, "frames": 80}))
    report = None
    with contextlib.suppress(Exception):
        async with asyncio.timeout(20):
            async for raw in ws:
                frame = json.loads(raw)
                if "pending" in frame:
                    report = frame
                    break
    assert report is not None
    assert report["pending"] > 1_000_000
    assert report["buffered"] == report["pending"]
    await ws.close()


@pytest.mark.parametrize("server", ["uvicorn", "uvicorn-lean", "daphne"])
async def test_a_close_reaches_a_client_that_keeps_sending(
    servers: dict[str, int], server: str
) -> None:
    """Frames the server never reads must not turn its close into a TCP reset that destroys
    the close frame (uvicorn closed the connection at once: the client saw 1006)."""
    for _ in range(5):
        ws, _ = await _open(servers[server])
        await ws.send(json.dumps({"do": "close"}))
        with contextlib.suppress(Exception):
            for _ in range(300):
                await ws.send(json.dumps({"do": "noise", "pad": "z" * 1000}))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
        assert ws.close_code == 4008
