"""The configuration docs stay true: every variable the code reads is documented once in
docs/configuration.md, and the README names it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
README = (ROOT / "README.md").read_text()

# env("X"), env.int("X", ...), os.environ.get("X"), os.environ["X"], os.getenv("X")
_READ = re.compile(
    r"""(?:\benv(?:\.[a-z_]+)?\(|os\.environ(?:\.get\(|\.setdefault\(|\[)|os\.getenv\()\s*["']([A-Z][A-Z0-9_]+)["']"""
)
_SHELL_READ = re.compile(r"\$\{([A-Z][A-Z0-9_]+):-")
# Read by code but not configuration: set by tools for child processes or by the test suite.
_NOT_CONFIGURATION = {
    "DJANGO_SETTINGS_MODULE",
    "DEBIAN_FRONTEND",
    "PATH",
    "HOME",
    "TEST_RUN_ID",
    "PYTEST_CURRENT_TEST",
}


def _variables_read() -> set[str]:
    found: set[str] = set()
    for path in [ROOT / "backend" / "settings.py", *sorted((ROOT / "scripts").glob("*.py"))]:
        found |= set(_READ.findall(path.read_text()))
    for path in [
        *sorted((ROOT / "scripts").glob("*.sh")),
        *sorted((ROOT / "compose").glob("*/start")),
    ]:
        found |= set(_SHELL_READ.findall(path.read_text()))
    return found - _NOT_CONFIGURATION


def _documented_rows() -> list[str]:
    return re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", CONFIGURATION, flags=re.MULTILINE)


def test_every_variable_the_code_reads_is_documented() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", CONFIGURATION))
    read = _variables_read()
    assert {"DATABASE_URL", "REDIS_URL", "TRITON_SERVER", "PORT"} <= read  # the scan works
    missing = sorted(read - documented)
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_each_variable_has_one_row_in_the_application_table() -> None:
    application_table = CONFIGURATION.split("## Read elsewhere")[0]
    rows = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", application_table, flags=re.MULTILINE)
    duplicated = sorted({name for name in rows if rows.count(name) > 1})
    assert not duplicated, f"documented twice: {duplicated}"
    assert len(rows) > 50  # the table was found and parsed


def test_the_readme_names_every_documented_variable() -> None:
    tables = CONFIGURATION.split("## Which")[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", tables, flags=re.MULTILINE)
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    assert {"DATABASE_URL", "TRITON_SERVER", "WEB_REPLICAS"} <= documented
    unnamed = sorted(name for name in documented if f"`{name}`" not in README)
    assert not unnamed, f"add to the README's Configuration section: {unnamed}"
