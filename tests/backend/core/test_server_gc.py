"""The server process's garbage collector settings (backend/core/server_gc.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import gc, json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
before = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
import backend.asgi  # noqa: F401  (the server's entry point)
print(json.dumps({
    "before": before,
    "threshold": gc.get_threshold(),
    "frozen": gc.get_freeze_count(),
}))
"""


def test_the_asgi_entry_point_freezes_start_up_objects_and_raises_thresholds() -> None:
    # In a fresh interpreter: the test process's own collector stays as pytest set it up.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["before"]["frozen"] == 0
    # Django, the apps and the URL conf: long-lived, out of every later full collection.
    assert probe["frozen"] > 10_000
    from backend.core.server_gc import SERVER_GC_THRESHOLDS

    assert tuple(probe["threshold"]) == SERVER_GC_THRESHOLDS
    assert SERVER_GC_THRESHOLDS[0] > 700  # CPython's default young threshold
