"""make bench: the lean socket client, the bare baseline server, and a --quick smoke run of
the whole harness against a real `scripts/run.sh`."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtests.wsclient import LeanSocket, open_socket

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def test_loadtests_import_nothing_of_the_project() -> None:
    project = {"api", "backend", "realtime", "workers"}
    for path in (ROOT / "loadtests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in project, f"{path.name} imports {name}"


@pytest.fixture(scope="module")
def bare_port() -> Iterator[int]:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [str(PYTHON), "-m", "loadtests.bare", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def _subscriber(port: int, topic: str, since: str | None = None) -> LeanSocket:
    ws = await open_socket("127.0.0.1", port, "/ws/v1/")
    ws.send(json.dumps({"type": "auth", "token": "1|x"}))
    assert json.loads(await ws.recv())["type"] == "auth.ok"
    ws.send(json.dumps({"type": "subscribe", "topic": topic, "since": since}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


@pytest.mark.parametrize("size", [10, 200, 40_000])
async def test_lean_client_frames_are_read_by_a_real_server(bare_port: int, size: int) -> None:
    """Masked frames of each length encoding (7-bit, 16-bit, 64-bit) reach the bare
    server intact, and its unmasked frames are parsed back, in order."""
    topic = f"t{size}"
    reader = await _subscriber(bare_port, topic)
    received: list[dict] = []
    reader.on_text = lambda text: received.append(json.loads(text))
    writer = await open_socket("127.0.0.1", bare_port, "/ws/v1/")
    for n in range(3):
        data = {"n": n, "pad": "é" * size}
        writer.send(json.dumps({"type": "publish", "topic": topic, "event": "e", "data": data}))
    async with asyncio.timeout(10):
        while len(received) < 3:
            await asyncio.sleep(0.01)
    assert [frame["data"]["n"] for frame in received] == [0, 1, 2]
    assert received[0]["data"]["pad"] == "é" * size
    assert received[2]["offset"] == "bare:3"
    # since: the bare server replays what came after, like Triton.
    late = await _subscriber(bare_port, topic, since="bare:1")
    replayed = [json.loads(await asyncio.wait_for(late.recv(), 5)) for _ in range(2)]
    assert [frame["data"]["n"] for frame in replayed] == [1, 2]
    for ws in (reader, writer, late):
        await ws.close()
    assert reader.closed.done()


def test_bench_quick_smoke_run(tmp_path: Path) -> None:
    """The whole harness, small: run.sh under uvicorn beside the bare server; every figure
    the results promise is there, with nothing lost."""
    output = tmp_path / "smoke"
    completed = subprocess.run(
        [str(PYTHON), "-m", "loadtests.bench", "--quick", "--servers", "uvicorn",
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(output.with_suffix(".json").read_text())
    assert results["server"] == "uvicorn" and results["machine"]["cores"]
    assert {"django", "uvicorn", "daphne", "python"} <= results["versions"].keys()
    for row in results["ws_fanout"].values():
        for key in ("deliveries_per_s", "ceiling_deliveries_per_s", "p50_ms", "p99_ms"):
            assert row[key] > 0, key
        assert row["lost"] == row["duplicated"] == row["out_of_order"] == 0
    connect = results["ws_connect"]
    assert connect["sockets_per_s"] > 0 and connect["ceiling_sockets_per_s"] > 0
    assert connect["storm"]["recovered"] == connect["storm"]["expected"] > 0
    assert results["ws_memory"]["kib_per_socket"] is not None
    rest = results["rest"]
    for key in ("products_rps", "baseline_rps", "products_p99_ms", "orders_p99_ms", "me_rps"):
        assert rest[key] > 0, key
    assert rest["failures"] == 0 and rest["orders"] > 0
    assert "fan-out" in output.with_suffix(".md").read_text()
