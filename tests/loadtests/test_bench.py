"""make bench: the lean socket client, the bare baseline server, and a --quick smoke run of
the whole harness against a real `scripts/run.sh`."""

from __future__ import annotations

import ast
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

from loadtests import e2e_status_push
from loadtests.bench import table
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


# Every section, small: 2-3 minutes on 2 busy cores (the e2e section's migrations and
# locust alone take about one).
@pytest.mark.timeout(600)
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
        for key in (
            "deliveries_per_s", "ceiling_deliveries_per_s", "p50_ms", "p99_ms",
            "write_answer_p99_ms",  # the PATCH behind each event, answered
        ):  # fmt: skip
            assert row[key] > 0, key
        assert row["lost"] == row["duplicated"] == row["out_of_order"] == 0
    # The larger size also runs at the smaller one's deliveries/s: 100 sockets, 40 ms apart.
    paced = results["ws_fanout"]["100"]["paced"]
    assert paced["interval_ms"] == 40 and "paced" not in results["ws_fanout"]["50"]
    assert paced["p99_ms"] > 0 and paced["ceiling_p99_ms"] > 0 and paced["write_answer_p99_ms"] > 0
    assert paced["lost"] == paced["duplicated"] == paced["out_of_order"] == 0
    connect = results["ws_connect"]
    assert connect["sockets_per_s"] > 0 and connect["ceiling_sockets_per_s"] > 0
    assert connect["storm"]["recovered"] == connect["storm"]["expected"] > 0
    memory = results["ws_memory"]
    assert memory["sockets"] == 100  # the largest --quick size, on the fresh servers
    assert memory["kib_per_socket"] is not None and memory["ceiling_kib_per_socket"] is not None
    assert "kib_per_socket_after_sections" in memory
    on_run = results["make_run_rest"]  # /auth/me on make run itself, beside /ping
    assert on_run["me_rps"] > 0 and on_run["baseline_rps"] > 0 and on_run["failures"] == 0
    rest = results["rest"]
    for key in ("products_rps", "baseline_rps", "products_p99_ms", "orders_p99_ms", "me_rps"):
        assert rest[key] > 0, key
    assert rest["failures"] == 0 and rest["orders"] > 0
    # e2e: the mixed locust load (20 users with --quick) while status moves are timed.
    e2e = results["e2e"]
    assert e2e["users"] == 20 and e2e["samples"] > 0 and e2e["probes"] >= e2e["samples"]
    assert e2e["status_push_p99_ms"] >= e2e["status_push_p50_ms"] > 0
    assert e2e["failures"] == e2e["duplicate_frames"] == 0, e2e["probe_errors"]
    assert e2e["idle_samples"] > 0 and e2e["idle_failures"] == 0  # the same moves, no load
    assert e2e["locust_requests"] > 0 and e2e["locust_rps"] > 0
    assert e2e["locust_failures"] == 0, e2e["locust"]["top_failures"]
    assert e2e["server_cpu_s"] > 0 and e2e["locust_exit_code"] == 0
    assert e2e["server_processes"] == (os.cpu_count() or 1)  # one per core, by default
    text = output.with_suffix(".md").read_text()
    assert "fan-out" in text and "end to end, 20 locust users" in text


LOCUST_COLUMNS = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def test_e2e_figures_from_the_probe_and_locusts_csv(tmp_path: Path) -> None:
    """The e2e figures: quantiles of what the probe saw, locust's totals and most frequent
    failures from its CSV files, and the rows of the bench table (an ``--only e2e`` run has
    no socket sections)."""
    prefix = tmp_path / "e2e-locust"
    Path(f"{prefix}_stats.csv").write_text(
        LOCUST_COLUMNS
        + "\nPOST,/orders,10,1,30,31,1,90,10,2.5,0.1,30,30,30,30,40,50,60,70,80,90,90"
        + "\nWS,connect,5,0,8,9,1,20,0,1.0,0.0,8,8,8,8,9,9,9,20,20,20,20"
        + "\nWS,event task.created,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A"
        + "\n,Aggregated,15,1,20,25,1,90,8,3.5,0.1,20,30,30,30,40,50,60,70,80,90,90\n"
    )
    Path(f"{prefix}_failures.csv").write_text(
        "Method,Name,Error,Occurrences,First Seen,Last Seen\n"
        "WS,connect,reset by peer,1,0,0\nPOST,/orders,HTTPError('503'),4,0,0\n"
    )
    locust = e2e_status_push.locust_totals(prefix)
    assert (locust["requests"], locust["failures"], locust["rps"]) == (15, 1, 3.5)
    assert locust["ws_p99_ms"] == {"connect": 20.0}
    assert [f["count"] for f in locust["top_failures"]] == [4, 1]
    assert e2e_status_push.locust_totals(tmp_path / "absent") == {}

    probed = e2e_status_push.Probed(
        latencies=[float(n) for n in range(1, 101)],
        answers=[float(n) for n in range(2, 102)],
        after_answer=[-1.0] * 100,
        moves=101,
        failures=1,
        errors=["no frame for order 7 paid within 10.0s"],
    )
    figures = e2e_status_push.summarize(
        probed, 200, locust, seconds=80.0, server_cpu_s=60.0, idle_status_push_p50_ms=4.0
    )
    assert figures["users"] == 200 and figures["probes"] == 101 and figures["samples"] == 100
    assert figures["status_push_p50_ms"] == 50.5 and figures["status_push_p99_ms"] == 99.0
    assert figures["status_push_max_ms"] == 100.0 and figures["status_post_p50_ms"] == 51.5
    assert figures["frame_after_answer_p99_ms"] == -1.0
    assert (figures["failures"], figures["locust_failures"], figures["locust_rps"]) == (1, 1, 3.5)
    assert e2e_status_push.quantile([], 0.99) is None
    assert e2e_status_push.quantile([7.0], 0.99) == 7.0

    figures |= {"worker_cpu_s": 1.0, "locust_cpu_s": 9.0, "mariadb_cpu_s": 5.0}
    results = {
        "date": "2026-11-26T00:00:00Z",
        "server": "uvicorn",
        "machine": {
            "summary": "x86_64, 2 cores",
            "load_average_at_start": (1.0, 1.0, 1.0),
            "load_average_at_end": (2.0, 2.0, 2.0),
        },
        "by_server": {},
        "rest": None,
        "e2e": figures,
    }
    rows = [line for line in table(results).splitlines() if "end to end" in line]
    assert len(rows) == 5
    assert "200 locust users" in rows[0] and "| 50.5 / 99.0 | 4.0 / None (no load) |" in rows[0]
    assert "probe failures (of 101 moves)" in rows[2] and "| 1, 0 |" in rows[2]
    assert "| 3.5, 1 |" in rows[3]
    assert "60.0 / 1.0 / 9.0 / 5.0 / -" in rows[4]
