"""The JavaScript client (realtime/static/triton/triton.js) under Node's test runner: its unit
tests, and its live tests against a real server (reconnect with ``since``, keepalive)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from backend.accounts.tokens import token_issue
from tests.e2e.conftest import ROOT, Server
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    if int(version.stdout.strip().lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"node {version.stdout.strip()} has no WebSocket; 20 or newer is needed")
    return node


def test_js_client_against_a_real_server(server: Server) -> None:
    node = _node()
    user = UserFactory(roles=["Customer"])
    issued = token_issue(user=user, device_name="js-client")
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "TRITON_HTTP": server.http,
        "TRITON_USER": json.dumps({"id": user.pk, "token": issued.plain_text}),
    }
    result = subprocess.run(
        [node, "--experimental-websocket", "--test", "--test-timeout=30000", "tests/js/"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, summary
    assert "# fail 0" in result.stdout, summary
    assert "# skipped 0" in result.stdout, summary
