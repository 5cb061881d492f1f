"""`make audit`: the locked dependencies against the public vulnerability advisories.

Exports uv.lock (every group, exact versions) with ``uv export --frozen``, checks which
advisory service answers (OSV, or PyPI's JSON API with its ``vulnerabilities`` field), and runs
pip-audit on the export against it. Fails on any vulnerability not recorded in
audit-allowlist.toml (reviewed exceptions: id, package, reason, reviewed and expires dates; an
expired entry fails too, so exceptions are looked at again).

Where no advisory service is reachable it says so plainly ("audit skipped: ...") and exits 0:
a clean result it did not check would be a lie, and a failure would block every offline build.
``AUDIT_REQUIRED=1`` turns that skip into a failure (for a CI that must audit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = ROOT / "audit-allowlist.toml"
PROBE_TIMEOUT = 10.0
# (pip-audit service name, how to ask it about one known package)
OSV_URL = "https://api.osv.dev/v1/query"
PYPI_URL = "https://pypi.org/pypi/django/4.2/json"


class AuditError(Exception):
    """The audit cannot give a trustworthy answer; the message says why."""


@dataclass(frozen=True)
class AllowedVulnerability:
    id: str
    package: str
    reason: str
    reviewed: date
    expires: date


def load_allowlist(
    path: Path = ALLOWLIST, *, today: date | None = None
) -> list[AllowedVulnerability]:
    """The reviewed exceptions; a malformed or expired entry is an error."""
    today = today or date.today()
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    entries = []
    for index, raw in enumerate(data.get("ignore", []), start=1):
        missing = [
            key
            for key in ("id", "package", "reason", "reviewed", "expires")
            if not raw.get(key) or (isinstance(raw.get(key), str) and not raw[key].strip())
        ]
        if missing:
            raise AuditError(f"{path.name} entry {index}: missing {', '.join(missing)}")
        if not isinstance(raw["reviewed"], date) or not isinstance(raw["expires"], date):
            raise AuditError(f"{path.name} entry {index}: reviewed/expires must be dates")
        if raw["expires"] < today:
            raise AuditError(
                f"{path.name}: the exception for {raw['id']} ({raw['package']}) expired on "
                f"{raw['expires']}: review it again (and update or remove the entry)"
            )
        entries.append(
            AllowedVulnerability(
                id=raw["id"].strip(),
                package=raw["package"].strip().lower(),
                reason=raw["reason"].strip(),
                reviewed=raw["reviewed"],
                expires=raw["expires"],
            )
        )
    return entries


def _answers(request: urllib.request.Request, expect_key: str) -> bool:
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:  # noqa: S310
            return response.status == 200 and expect_key in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def reachable_service() -> str | None:
    """The pip-audit service that answers from here, or None."""
    osv = urllib.request.Request(
        OSV_URL,
        data=json.dumps(
            {"package": {"name": "django", "ecosystem": "PyPI"}, "version": "4.2"}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    if _answers(osv, "vulns"):
        return "osv"
    if _answers(urllib.request.Request(PYPI_URL), "vulnerabilities"):
        return "pypi"
    return None


def export_lock(target: Path) -> None:
    uv = ROOT / ".tools" / "bin" / "uv"
    result = subprocess.run(
        [
            str(uv if uv.exists() else "uv"),
            "export",
            "--frozen",
            "--format",
            "requirements-txt",
            "--all-groups",
            "--no-hashes",
            "--no-emit-project",
            "--output-file",
            str(target),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AuditError(f"uv export failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]

    def line(self) -> str:
        fix = ", ".join(self.fix_versions) or "no fixed version yet"
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.package} {self.version}: {self.id}{aliases}; fixed in {fix}"


def evaluate(
    report: dict[str, Any], allowlist: list[AllowedVulnerability]
) -> tuple[list[Finding], list[Finding], list[str]]:
    """pip-audit's JSON report -> (unreviewed findings, allowed findings, unaudited packages)."""
    allowed_ids = {(entry.package, entry.id) for entry in allowlist}
    unreviewed, allowed, skipped = [], [], []
    for dependency in report.get("dependencies", []):
        name = str(dependency["name"]).lower()
        if dependency.get("skip_reason"):
            skipped.append(f"{name}: {dependency['skip_reason']}")
            continue
        for vuln in dependency.get("vulns", []):
            finding = Finding(
                package=name,
                version=str(dependency.get("version", "?")),
                id=vuln["id"],
                aliases=tuple(vuln.get("aliases", [])),
                fix_versions=tuple(vuln.get("fix_versions", [])),
            )
            ids = {finding.id, *finding.aliases}
            if any((name, vuln_id) in allowed_ids for vuln_id in ids):
                allowed.append(finding)
            else:
                unreviewed.append(finding)
    return unreviewed, allowed, skipped


def run_pip_audit(requirements: Path, service: str) -> dict[str, Any]:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    result = subprocess.run(
        [
            str(pip_audit),
            "--requirement",
            str(requirements),
            "--disable-pip",
            "--no-deps",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    # pip-audit exits 1 when it finds vulnerabilities: the JSON says what they are.
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise AuditError(f"pip-audit failed: {result.stderr.strip()[-2000:]}") from None


def main() -> int:
    try:
        allowlist = load_allowlist()
        service = reachable_service()
        if service is None:
            message = (
                "audit skipped: no advisory service reachable "
                f"(tried {OSV_URL} and PyPI's JSON API); the dependencies were NOT checked"
            )
            print(message)
            return 1 if os.environ.get("AUDIT_REQUIRED") == "1" else 0
        with tempfile.TemporaryDirectory() as folder:
            requirements = Path(folder) / "requirements.txt"
            export_lock(requirements)
            report = run_pip_audit(requirements, service)
        unreviewed, allowed, skipped = evaluate(report, allowlist)
    except AuditError as exc:
        print(f"audit failed: {exc}", file=sys.stderr)
        return 1
    audited = len(report.get("dependencies", [])) - len(skipped)
    if audited == 0:
        print("audit failed: the advisory service answered for no dependency", file=sys.stderr)
        return 1
    for finding in allowed:
        print(f"allowed (reviewed in {ALLOWLIST.name}): {finding.line()}")
    for line in skipped:
        print(f"not audited: {line}")
    if unreviewed:
        for finding in unreviewed:
            print(f"VULNERABLE: {finding.line()}", file=sys.stderr)
        print(
            f"audit failed: {len(unreviewed)} unreviewed vulnerabilities; upgrade, or record a "
            f"reviewed exception in {ALLOWLIST.name}",
            file=sys.stderr,
        )
        return 1
    print(f"audit passed: {audited} locked packages checked against {service}, none vulnerable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
