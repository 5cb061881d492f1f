"""`make audit`: the lock is exported and audited for real where an advisory service answers,
says plainly that it skipped where none does, and fails on any unreviewed vulnerability."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"

_spec = importlib.util.spec_from_file_location("triton_audit", ROOT / "scripts" / "audit.py")
assert _spec and _spec.loader
audit = importlib.util.module_from_spec(_spec)
sys.modules["triton_audit"] = audit
_spec.loader.exec_module(audit)


def run_audit(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYTHON), "scripts/audit.py"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_audit_never_reports_a_clean_result_it_did_not_check() -> None:
    result = run_audit()
    output = result.stdout + result.stderr
    if audit.reachable_service() is None:
        assert result.returncode == 0, output
        assert "audit skipped: no advisory service reachable" in output
        assert "passed" not in output
        required = run_audit(AUDIT_REQUIRED="1")
        assert required.returncode == 1
        assert "audit skipped: no advisory service reachable" in required.stdout
    else:  # a machine that can reach OSV or PyPI audits for real
        assert "skipped" not in output
        assert "audit passed" in output or "VULNERABLE" in output


def test_the_export_is_the_whole_lock_with_exact_versions(tmp_path: Path) -> None:
    target = tmp_path / "requirements.txt"
    audit.export_lock(target)
    pins = [line for line in target.read_text().splitlines() if line and line[0] not in "# "]
    names = {pin.split("==")[0].lower() for pin in pins}
    assert all("==" in pin for pin in pins), pins
    assert {"django", "channels", "celery", "pytest", "pip-audit"} <= names


REPORT = {
    "dependencies": [
        {
            "name": "Django",
            "version": "5.2.0",
            "vulns": [
                {"id": "PYSEC-2025-1", "aliases": ["CVE-2025-0001"], "fix_versions": ["5.2.1"]},
                {"id": "GHSA-aaaa-bbbb-cccc", "aliases": [], "fix_versions": []},
            ],
        },
        {"name": "redis", "version": "6.0.0", "vulns": []},
        {"name": "private-thing", "skip_reason": "Dependency not found on PyPI"},
    ]
}


def allowed(**overrides: object) -> list:
    entry = {
        "id": "CVE-2025-0001",
        "package": "django",
        "reason": "Only the GIS module is affected; Triton does not install it.",
        "reviewed": date(2026, 11, 25),
        "expires": date(2027, 2, 25),
        **overrides,
    }
    return [audit.AllowedVulnerability(**entry)]


def test_unreviewed_vulnerabilities_fail_and_reviewed_ones_match_by_alias() -> None:
    unreviewed, accepted, skipped = audit.evaluate(REPORT, allowed())
    assert [f.id for f in unreviewed] == ["GHSA-aaaa-bbbb-cccc"]
    assert [f.id for f in accepted] == ["PYSEC-2025-1"]
    assert skipped == ["private-thing: Dependency not found on PyPI"]
    # An exception is for one package only.
    unreviewed, accepted, _ = audit.evaluate(REPORT, allowed(package="redis"))
    assert len(unreviewed) == 2 and not accepted


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "audit-allowlist.toml"
    path.write_text(body)
    return path


ENTRY = """
[[ignore]]
id = "CVE-2025-0001"
package = "Django"
reason = "Only the GIS module is affected; Triton does not install it."
reviewed = 2026-11-25
expires = 2027-02-25
"""


def test_the_allowlist_needs_a_reason_dates_and_expires(tmp_path: Path) -> None:
    [entry] = audit.load_allowlist(_write(tmp_path, ENTRY), today=date(2026, 11, 25))
    assert entry.package == "django" and entry.expires == date(2027, 2, 25)
    assert audit.load_allowlist(ROOT / "audit-allowlist.toml") is not None  # the real file parses
    with pytest.raises(audit.AuditError, match="expired on 2027-02-25"):
        audit.load_allowlist(_write(tmp_path, ENTRY), today=date(2027, 3, 1))
    with pytest.raises(audit.AuditError, match="missing reason"):
        audit.load_allowlist(_write(tmp_path, ENTRY.replace("reason", "# reason")))
    with pytest.raises(audit.AuditError, match="must be dates"):
        audit.load_allowlist(_write(tmp_path, ENTRY.replace("2026-11-25", '"soon"')))
