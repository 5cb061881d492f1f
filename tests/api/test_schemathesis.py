"""The OpenAPI document against the running server: schemathesis with every check.

A real daphne process (tests/e2e/conftest.py's helpers) on the test database, an
authenticated administrator, and a bounded number of examples per operation. Any failure
(an undocumented status or content type, a body off its schema, a request valid by the
schema refused or an invalid one accepted, a 500) fails the test with schemathesis' report.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backend.accounts.tokens import token_issue
from tests.e2e.conftest import ServerPool
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = ROOT / ".venv" / "bin" / "schemathesis"
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
# Bounded by examples, not by wall-clock time: a time budget on a busy 2-core machine made
# schemathesis skip every operation ("time limit reached") and prove nothing.
MAX_EXAMPLES = 10


def test_the_api_conforms_to_its_openapi_document(
    server_pool_here: ServerPool, tmp_path: Path
) -> None:
    server = server_pool_here.get("schemathesis")
    admin = UserFactory(roles=["Admin"])
    token = token_issue(user=admin, device_name="schemathesis").plain_text
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server.http}/api/v1/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "20",
            "--workers",
            "2",
            "--seed",
            "1",
            # Logging out would revoke the token every other request is made with.
            "--exclude-path",
            "/api/v1/auth/logout",
        ],
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = result.stdout + result.stderr
    print(report)  # shown with -rP: the phases, their timings and the operations covered
    assert result.returncode == 0, report
    assert "No issues found" in report or "passed" in report, report
    assert "Tested: 0" not in report and "Empty test suite" not in report, report
