"""Production settings fail loudly, and the documented production environment passes
``manage.py check --deploy``. Each case is a fresh interpreter with a clean environment."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [str(PYTHON), *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "backend.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


SETUP = ["-c", "import django; django.setup(); print('started')"]


def test_refuses_to_start_without_a_secret_key() -> None:
    result = _run({"TRITON_VAR_DIR": "/tmp/triton-tests/settings"}, *SETUP)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr


def test_debug_mode_starts_without_a_secret_key() -> None:
    result = _run({"DJANGO_DEBUG": "true", "TRITON_VAR_DIR": "/tmp/triton-tests/settings"}, *SETUP)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_several_server_processes_need_redis() -> None:
    debug = {"DJANGO_DEBUG": "true", "TRITON_VAR_DIR": "/tmp/triton-tests/settings"}
    alone = _run({**debug, "WEB_CONCURRENCY": "2"}, *SETUP)
    assert alone.returncode != 0
    assert "WEB_CONCURRENCY above 1 needs REDIS_URL" in alone.stderr
    shared = _run(
        {**debug, "WEB_CONCURRENCY": "2", "REDIS_URL": "redis://127.0.0.1:6379/0"}, *SETUP
    )
    assert shared.returncode == 0, shared.stderr


def _production_env() -> dict[str, str]:
    """compose/env.example, with its "change-me" secret replaced as its header instructs."""
    text = (ROOT / "compose" / "env.example").read_text()
    env = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    env["TRITON_VAR_DIR"] = "/tmp/triton-tests/settings"
    env["MEDIA_ROOT"] = "/tmp/triton-tests/settings/media"
    env["STATIC_ROOT"] = "/tmp/triton-tests/settings/static"
    return env


def test_documented_production_environment_passes_check_deploy() -> None:
    result = _run(_production_env(), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_https_settings() -> None:
    env = _production_env()
    for name in list(env):
        if name.startswith("DJANGO_SECURE_"):
            del env[name]
    result = _run(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout
