"""Headless locust (loadtests/locustfile.py) for ~20 s against a real daphne server: every
kind of user runs, the socket measurements reach locust's CSV as ``WS`` rows, and nothing
fails. Seeding goes through ``manage.py seed_loadtest`` (run twice: it is idempotent)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from backend.accounts.models import User
from backend.commerce.models import Product
from backend.messaging.models import Room
from tests.e2e.conftest import ROOT, Server, ServerPool

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

LOCUST = ROOT / ".venv" / "bin" / "locust"
# The socket request types every run of this size must report (the rest depend on chance).
EXPECTED_WS = {
    "connect",
    "subscribe room",
    "subscribe user",
    "subscribe dashboard",
    "subscribe order",
    "message.send ack",
    "event message.created (own)",
    "event order.status_changed",
    "event task.created",
}


@pytest.fixture
def loadtest_server(transactional_db: None) -> Iterator[Server]:
    """A server of its own (the e2e pool's warm-up would start five)."""
    pool = ServerPool(connection.settings_dict["NAME"])
    try:
        yield pool.get("loadtest")
    finally:
        pool.stop_all()


def read_stats(prefix: Path) -> list[dict[str, str]]:
    with Path(f"{prefix}_stats.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_seeding_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        call_command(
            "seed_loadtest", users=3, products=2, rooms=1, stock=50, tokens_out=tmp_path / "t.json"
        )
    assert User.objects.filter(email__startswith="loadtest-").count() == 4  # 3 + staff
    assert Product.objects.filter(name__startswith="Load test product").count() == 2
    (room,) = Room.objects.filter(name__startswith="Load test room")
    assert room.members.count() == 4  # and the staff user who created it
    tokens = json.loads((tmp_path / "t.json").read_text())
    assert len(tokens["users"]) == 3
    staff = User.objects.get(email="loadtest-staff@example.com")
    assert tokens["staff"]["id"] == staff.pk
    assert staff.check_password("loadtest-password-2026")


def test_headless_run_reports_socket_requests_without_failures(
    loadtest_server: Server, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.json"
    call_command("seed_loadtest", users=11, products=10, rooms=1, tokens_out=tokens)
    prefix = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    run = subprocess.run(
        [
            str(LOCUST),
            "-f",
            str(ROOT / "loadtests" / "locustfile.py"),
            "--host",
            loadtest_server.http,
            "--headless",
            "--users",
            "10",
            "--spawn-rate",
            "10",
            "--run-time",
            "20s",
            "--triton-tokens",
            str(tokens),
            # Every task once first: a 20 s run must not depend on the weighted draw.
            "--triton-every-task-first",
            "--csv",
            str(prefix),
            "--html",
            str(tmp_path / "report.html"),
            "--only-summary",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = read_stats(prefix)
    failed = {
        f"{r['Type']} {r['Name']}": r["Failure Count"] for r in rows if r["Failure Count"] != "0"
    }
    assert not failed, f"{failed}\n{run.stderr[-4000:]}"
    assert run.returncode == 0, run.stderr[-4000:]
    ws_names = {r["Name"] for r in rows if r["Type"] == "WS" and int(r["Request Count"]) > 0}
    assert ws_names >= EXPECTED_WS, f"missing: {EXPECTED_WS - ws_names}"
    http_names = {r["Name"] for r in rows if r["Type"] in {"GET", "POST"}}
    assert {"/products?search", "/orders", "/files (upload)", "/mails"} <= http_names
    assert (tmp_path / "report.html").stat().st_size > 0
