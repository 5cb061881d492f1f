"""The figure ``e2e.{users,status_push_p99_ms,failures}``: under the mixed locust load, the
time from a staff ``POST /orders/{id}/status`` to the order owner's socket frame.

Standalone (HTTP and the socket only, nothing of the project imported)::

    python loadtests/e2e_status_push.py --host http://127.0.0.1:8000 \\
        --tokens loadtests/results/tokens.json --users 200 --time 90

It starts ``locust`` headless with loadtests/locustfile.py at ``--users`` users (its CSV and
HTML report go next to the JSON), waits for the ramp-up, then probes on its own threads:
an owner (the last seeded account, a socket subscribed to ``user.{id}``) places an order
and the staff account moves it pending→paid→shipped→delivered; each move is timed from just
before the request to the owner's ``order.status_changed`` frame showing that status.
A probe failure is a refused request or a frame that did not come within ``--timeout``.
Writes ``{"e2e": {"users", "status_push_p99_ms", "failures", ...}}`` to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import websocket

HERE = Path(__file__).resolve().parent
MOVES = ("paid", "shipped", "delivered")


class OwnerSocket:
    """The owner's socket; a thread puts every ``order.status_changed`` frame on a queue."""

    def __init__(self, host: str, token: str) -> None:
        parts = urlsplit(host)
        scheme = "wss" if parts.scheme == "https" else "ws"
        self.ws = websocket.create_connection(
            f"{scheme}://{parts.netloc}/ws/v1/",
            timeout=10,
            origin=f"{parts.scheme}://{parts.netloc}",
        )
        self.ws.send(json.dumps({"type": "auth", "token": token}))
        reply = json.loads(self.ws.recv())
        if reply.get("type") != "auth.ok":
            raise RuntimeError(f"auth refused: {reply}")
        self.user_id = int(reply["user_id"])
        self.ws.send(json.dumps({"type": "subscribe", "topic": f"user.{self.user_id}", "id": "u"}))
        while json.loads(self.ws.recv()).get("id") != "u":
            pass
        self.ws.settimeout(None)
        self.frames: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        # Frames per (order id, status): more than one means the same change came twice.
        self.seen: dict[tuple[Any, Any], int] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except Exception:
                return
            if not raw:
                return
            frame = json.loads(raw)
            if frame.get("event") == "order.status_changed":
                data = frame["data"]
                key = (data.get("id"), data.get("status"))
                self.seen[key] = self.seen.get(key, 0) + 1
                self.frames.put((time.perf_counter(), data))

    def wait_for(self, order_id: int, status: str, timeout: float) -> float | None:
        """Arrival time (perf_counter) of the frame showing this order in this status."""
        deadline = time.perf_counter() + timeout
        while (left := deadline - time.perf_counter()) > 0:
            try:
                arrived, data = self.frames.get(timeout=left)
            except queue.Empty:
                return None
            if data.get("id") == order_id and data.get("status") == status:
                return arrived
        return None


def connect_owner(host: str, token: str, attempts: int = 5) -> OwnerSocket:
    """The probe's own socket, retried: under overload the server may refuse a connect
    (the locust CSV counts those for the load's users)."""
    for attempt in range(attempts):
        try:
            return OwnerSocket(host, token)
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def probe(
    host: str, owner_token: str, staff_token: str, duration: float, timeout: float
) -> tuple[list[float], int, int, list[str]]:
    owner = requests.Session()
    owner.headers["Authorization"] = f"Bearer {owner_token}"
    staff = requests.Session()
    staff.headers["Authorization"] = f"Bearer {staff_token}"
    sock = connect_owner(host, owner_token)
    products = owner.get(f"{host}/api/v1/products?limit=50", timeout=30).json()["items"]
    latencies: list[float] = []
    failures = 0
    errors: list[str] = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        product = next(p for p in products if p["stock"] > 0)
        try:
            placed = owner.post(
                f"{host}/api/v1/orders",
                json={"items": [{"product_id": product["id"], "quantity": 1}]},
                timeout=30,
            )
        except requests.RequestException as exc:
            failures += 1
            errors.append(f"place order: {exc!r}")
            continue
        if placed.status_code != 201:
            failures += 1
            errors.append(f"place order: {placed.status_code} {placed.text[:200]}")
            continue
        order_id = int(placed.json()["id"])
        for status in MOVES:
            started = time.perf_counter()
            try:
                moved = staff.post(
                    f"{host}/api/v1/orders/{order_id}/status", json={"status": status}, timeout=30
                )
            except requests.RequestException as exc:
                failures += 1
                errors.append(f"status {status}: {exc!r}")
                break
            if moved.status_code != 200:
                failures += 1
                errors.append(f"status {status}: {moved.status_code} {moved.text[:200]}")
                break
            arrived = sock.wait_for(order_id, status, timeout)
            if arrived is None:
                failures += 1
                errors.append(f"no frame for order {order_id} {status} within {timeout}s")
                continue
            latencies.append((arrived - started) * 1000)
        time.sleep(0.2)
    time.sleep(timeout)  # late frames still count as duplicates
    sock.ws.close()
    duplicates = sum(count - 1 for count in sock.seen.values() if count > 1)
    if duplicates:
        errors.append(f"{duplicates} duplicate order.status_changed frames")
    return latencies, failures, duplicates, errors


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def locust_totals(csv_prefix: Path) -> dict[str, Any]:
    """Requests and failures of the locust run (its Aggregated row), and the WS rows."""
    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return {}
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    return {
        "requests": int(total["Request Count"]) if total else 0,
        "failures": int(total["Failure Count"]) if total else 0,
        "ws_p99_ms": {
            r["Name"]: float(r["99%"])
            for r in rows
            if r["Type"] == "WS" and r["99%"] not in ("N/A", "")
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--host", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--tokens", required=True, help="manage.py seed_loadtest --tokens-out file")
    parser.add_argument("--users", type=int, default=200, help="locust users of the mixed load")
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--time", type=int, default=90, help="seconds of locust load")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a frame")
    parser.add_argument("--out", default=str(HERE / "results" / "e2e.json"))
    args = parser.parse_args()

    host = args.host.rstrip("/")
    tokens = json.loads(Path(args.tokens).read_text())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_prefix = out.parent / "e2e_locust"
    ramp_up = args.users / args.spawn_rate
    locust = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(HERE / "locustfile.py"),
            "--host",
            host,
            "--headless",
            "--users",
            str(args.users),
            "--spawn-rate",
            str(args.spawn_rate),
            "--run-time",
            f"{args.time}s",
            "--triton-tokens",
            args.tokens,
            "--csv",
            str(csv_prefix),
            "--html",
            str(out.parent / "e2e_locust.html"),
            "--only-summary",
            "--stop-timeout",
            "10",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(out.parent / "e2e_locust.log").open("w"),
    )
    try:
        time.sleep(min(ramp_up, args.time / 2))  # measure under the full load, not the ramp
        probe_time = max(5.0, args.time - ramp_up - 5)
        latencies, failures, duplicates, errors = probe(
            host,
            # The last seeded account: locust hands accounts out from the first one.
            tokens["users"][-1]["token"],
            tokens["staff"]["token"],
            probe_time,
            args.timeout,
        )
    finally:
        locust.wait(timeout=args.time + 120)
    result = {
        "e2e": {
            "users": args.users,
            "status_push_p99_ms": round(p99(latencies), 1),
            "failures": failures,
            "samples": len(latencies),
            "duplicate_frames": duplicates,
            "status_push_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "status_push_max_ms": round(max(latencies), 1) if latencies else None,
            "probe_errors": errors[:20],
            "locust": locust_totals(csv_prefix),
        }
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if failures == 0 and latencies else 1


if __name__ == "__main__":
    sys.exit(main())
