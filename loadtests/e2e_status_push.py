"""The figure ``e2e.{users,status_push_p99_ms,failures}``: under the mixed locust load, the
time from a staff ``POST /orders/{id}/status`` to the order owner's socket frame.

Standalone (HTTP and the socket only, nothing of the project imported)::

    python loadtests/e2e_status_push.py --host http://127.0.0.1:8000 \\
        --tokens loadtests/results/tokens.json --users 200 --time 90

It starts ``locust`` headless with loadtests/locustfile.py at ``--users`` users (its CSV and
HTML report go next to the JSON, as ``e2e-locust*``), waits for the ramp-up, then probes on
its own threads: an owner (the last seeded account, a socket subscribed to ``user.{id}``)
places an order and the staff account moves it pending→paid→shipped→delivered; each move is
timed from just before the request to the owner's ``order.status_changed`` frame showing
that status.
A probe failure is a refused request or a frame that did not come within ``--timeout``.
Writes ``{"e2e": {"users", "status_push_p99_ms", "failures", ...}}`` to ``--out``.

``run(...)`` does the same and returns the figures (``make bench``'s ``e2e`` section calls it).
"""

from __future__ import annotations

import argparse
import csv
import json
import queue
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
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


@dataclass
class Probed:
    """What the probe saw: per move, request sent -> frame (``latencies``), request sent
    -> answer read (``answers``) and answer -> frame (``after_answer``, negative when the
    frame came first), in ms; ``moves`` tried; failed moves and orders."""

    latencies: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    after_answer: list[float] = field(default_factory=list)
    moves: int = 0
    failures: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def probe(
    host: str,
    owner_token: str,
    staff_token: str,
    duration: float,
    timeout: float,
    linger: float | None = None,
) -> Probed:
    """Orders moved through their statuses for ``duration`` seconds; then ``linger``
    (default ``timeout``) seconds more to count late duplicate frames."""
    owner = requests.Session()
    owner.headers["Authorization"] = f"Bearer {owner_token}"
    staff = requests.Session()
    staff.headers["Authorization"] = f"Bearer {staff_token}"
    sock = connect_owner(host, owner_token)
    products = owner.get(f"{host}/api/v1/products?limit=50", timeout=30).json()["items"]
    seen = Probed()
    errors = seen.errors
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
            seen.failures += 1
            errors.append(f"place order: {exc!r}")
            continue
        if placed.status_code != 201:
            seen.failures += 1
            errors.append(f"place order: {placed.status_code} {placed.text[:200]}")
            continue
        order_id = int(placed.json()["id"])
        for status in MOVES:
            seen.moves += 1
            started = time.perf_counter()
            try:
                moved = staff.post(
                    f"{host}/api/v1/orders/{order_id}/status", json={"status": status}, timeout=30
                )
            except requests.RequestException as exc:
                seen.failures += 1
                errors.append(f"status {status}: {exc!r}")
                break
            answered = time.perf_counter()
            if moved.status_code != 200:
                seen.failures += 1
                errors.append(f"status {status}: {moved.status_code} {moved.text[:200]}")
                break
            arrived = sock.wait_for(order_id, status, timeout)
            if arrived is None:
                seen.failures += 1
                errors.append(f"no frame for order {order_id} {status} within {timeout}s")
                continue
            seen.latencies.append((arrived - started) * 1000)
            seen.answers.append((answered - started) * 1000)
            seen.after_answer.append((arrived - answered) * 1000)
        time.sleep(0.2)
    time.sleep(timeout if linger is None else linger)  # late frames count as duplicates
    sock.ws.close()
    seen.duplicates = sum(count - 1 for count in sock.seen.values() if count > 1)
    if seen.duplicates:
        errors.append(f"{seen.duplicates} duplicate order.status_changed frames")
    return seen


def quantile(values: list[float], fraction: float) -> float | None:
    """``fraction`` (0.5, 0.99) of ``values``, interpolated; None without samples."""
    if not values:
        return None
    if len(values) < 2:
        return round(values[0], 1)
    return round(
        statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1], 1
    )


def locust_totals(csv_prefix: Path) -> dict[str, Any]:
    """Requests, failures and req/s of the locust run (its Aggregated row), the p99 of each
    WS row, and the most frequent failures."""
    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return {}
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    failures: list[dict[str, Any]] = []
    failures_path = Path(f"{csv_prefix}_failures.csv")
    if failures_path.exists():
        with failures_path.open() as fh:
            failures = [
                {"name": f"{r['Method']} {r['Name']}", "error": r["Error"][:200],
                 "count": int(r["Occurrences"])}
                for r in csv.DictReader(fh)
            ]  # fmt: skip
        failures.sort(key=lambda f: -f["count"])
    return {
        "requests": int(total["Request Count"]) if total else 0,
        "failures": int(total["Failure Count"]) if total else 0,
        "rps": round(float(total["Requests/s"]), 1) if total else 0.0,
        "p99_ms": float(total["99%"]) if total and total["99%"] not in ("N/A", "") else None,
        "ws_p99_ms": {
            r["Name"]: float(r["99%"])
            for r in rows
            if r["Type"] == "WS" and r["99%"] not in ("N/A", "")
        },
        "top_failures": failures[:5],
    }


def summarize(probed: Probed, users: int, locust: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``e2e`` figures from what the probe saw and locust's totals."""
    return {
        "users": users,
        "status_push_p50_ms": quantile(probed.latencies, 0.5),
        "status_push_p99_ms": quantile(probed.latencies, 0.99),
        "status_push_max_ms": round(max(probed.latencies), 1) if probed.latencies else None,
        # Of the push: the request's own round trip (the write, its commit and the on_commit
        # relay run before the answer); the rest is the frame's way after it.
        "status_post_p50_ms": quantile(probed.answers, 0.5),
        "status_post_p99_ms": quantile(probed.answers, 0.99),
        "frame_after_answer_p50_ms": quantile(probed.after_answer, 0.5),
        "frame_after_answer_p99_ms": quantile(probed.after_answer, 0.99),
        "probes": probed.moves,
        "samples": len(probed.latencies),
        "failures": probed.failures,
        "duplicate_frames": probed.duplicates,
        "probe_errors": probed.errors[:20],
        "locust_requests": locust.get("requests", 0),
        "locust_failures": locust.get("failures", 0),
        "locust_rps": locust.get("rps", 0.0),
        "locust": locust,
        **extra,
    }


def run(
    host: str,
    tokens_path: Path | str,
    *,
    users: int = 200,
    spawn_rate: float = 10.0,
    seconds: int = 90,
    timeout: float = 10.0,
    results_dir: Path = HERE / "results",
    name: str = "e2e-locust",
    idle_seconds: float = 10.0,
) -> dict[str, Any]:
    """Locust's mixed load at ``users`` for ``seconds`` (ramp-up included) while the probe
    runs; the ``e2e`` figures. Locust's CSV, HTML and log go to ``results_dir/name*``.
    First the probe runs ``idle_seconds`` alone: the same moves without the load, the
    baseline of the same run (``idle_*``)."""
    host = host.rstrip("/")
    tokens = json.loads(Path(tokens_path).read_text())
    # The owner is the last seeded account: locust hands accounts out from the first one.
    owner_token, staff_token = tokens["users"][-1]["token"], tokens["staff"]["token"]
    idle = Probed()
    if idle_seconds > 0:
        idle = probe(host, owner_token, staff_token, idle_seconds, timeout, linger=1.0)
    results_dir.mkdir(parents=True, exist_ok=True)
    csv_prefix = results_dir / name
    ramp_up = users / spawn_rate
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with (results_dir / f"{name}.log").open("w") as locust_log:
        locust = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "locust"),
                "-f",
                str(HERE / "locustfile.py"),
                "--host",
                host,
                "--headless",
                "--users",
                str(users),
                "--spawn-rate",
                str(spawn_rate),
                "--run-time",
                f"{seconds}s",
                "--triton-tokens",
                str(tokens_path),
                "--csv",
                str(csv_prefix),
                "--html",
                str(results_dir / f"{name}.html"),
                "--only-summary",
                "--stop-timeout",
                "10",
            ],
            stdout=subprocess.DEVNULL,
            stderr=locust_log,
        )
        try:
            time.sleep(min(ramp_up, seconds / 2))  # measure under the full load, not the ramp
            probed = probe(host, owner_token, staff_token, max(5.0, seconds - ramp_up - 5), timeout)
        finally:
            try:
                locust.wait(timeout=seconds + 120)
            except subprocess.TimeoutExpired:
                locust.kill()
                locust.wait(10)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return summarize(
        probed,
        users,
        locust_totals(csv_prefix),
        spawn_rate=spawn_rate,
        seconds=round(time.monotonic() - started, 1),
        # Locust shares the machine's cores with the server: what it took of them.
        locust_cpu_s=round(
            children.ru_utime
            + children.ru_stime
            - children_before.ru_utime
            - children_before.ru_stime,
            1,
        ),
        locust_exit_code=locust.returncode,
        idle_status_push_p50_ms=quantile(idle.latencies, 0.5),
        idle_status_push_p99_ms=quantile(idle.latencies, 0.99),
        idle_samples=len(idle.latencies),
        idle_failures=idle.failures,
    )


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

    out = Path(args.out)
    figures = run(
        args.host,
        args.tokens,
        users=args.users,
        spawn_rate=args.spawn_rate,
        seconds=args.time,
        timeout=args.timeout,
        results_dir=out.parent,
    )
    result = {"e2e": figures}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if figures["failures"] == 0 and figures["samples"] else 1


if __name__ == "__main__":
    sys.exit(main())
