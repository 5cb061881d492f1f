"""The embedded default (``make run`` with no Redis): SQLite, the in-memory channel layer and
history, and the outbox sweeper running inside the server process.

An event committed by another OS process (a management command, a worker) cannot reach the
server's in-memory layer directly: the server's own sweeper must relay it.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LOG_DIR, PYTHON, ROOT, WS, OpenWS, Server, base_env, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def embedded_env(db_path: Path, var_dir: Path) -> dict[str, str]:
    return base_env(
        DATABASE_URL=f"sqlite:///{db_path}",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        TRITON_VAR_DIR=str(var_dir),
        REALTIME_INPROCESS_SWEEP="true",
        OUTBOX_SWEEP_INTERVAL="0.5",
        OUTBOX_RELAY_DELAY="0",
        REALTIME_SYNC_INTERVAL="0.5",
    )


def manage_shell(env: dict[str, str], code: str, timeout: float = 40) -> str:
    """Run ``code`` in ``manage.py shell`` (a separate OS process); its stdout."""
    done = subprocess.run(
        [str(PYTHON), "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"manage.py shell failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


SETUP = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
from backend.accounts.models import User
from backend.accounts.tokens import token_issue
user = User.objects.create_user(email="embedded@example.com", password="pw-embedded-123", name="E")
print("RESULT", user.pk, token_issue(user=user, device_name="e2e").plain_text)
"""

RENAME = """
from backend.accounts.models import User
from backend.accounts.services import user_update
user = User.objects.get(pk={user_id})
user_update(actor=user, user_id=user.pk, changes={{"name": {name!r}}})
print("RESULT done")
"""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int, str]]:
    """A migrated SQLite database with one user, and a daphne serving it. (user id, token)"""
    work = tmp_path_factory.mktemp("embedded")
    env = embedded_env(work / f"{uuid.uuid4().hex}.sqlite3", work / "var")
    out = manage_shell(env, SETUP)
    _, user_id, token = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    port = free_port()
    server = Server(name="embedded", port=port, env=env, log_path=LOG_DIR / f"embedded-{port}.log")
    server.start()
    try:
        yield server, int(user_id), token
    finally:
        server.stop()
        print(f"\n----- embedded server log -----\n{server.log_text()}")


async def test_change_made_through_the_server_arrives_live(
    embedded: tuple[Server, int, str], open_ws: OpenWS
) -> None:
    server, user_id, token = embedded
    ws: WS = await open_ws(server, token)
    await ws.subscribe(f"user.{user_id}")
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
        answer = await client.patch(
            f"/api/v1/users/{user_id}",
            json={"name": "through the server"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    event = await ws.recv_event("user.updated", timeout=3)
    assert event["data"]["name"] == "through the server"


async def test_event_committed_by_another_process_arrives_through_the_sweeper(
    embedded: tuple[Server, int, str], open_ws: OpenWS
) -> None:
    server, user_id, token = embedded
    ws: WS = await open_ws(server, token)
    answer = await ws.subscribe(f"user.{user_id}")
    assert answer["type"] == "subscribed", answer

    code = RENAME.format(user_id=user_id, name="from another process")
    await asyncio.to_thread(manage_shell, server.env, code)
    event = await ws.recv_event("user.updated", timeout=5)
    assert event["topic"] == f"user.{user_id}"
    assert event["data"]["name"] == "from another process"

    # And a second one: the sweeper keeps going.
    code = RENAME.format(user_id=user_id, name="second")
    await asyncio.to_thread(manage_shell, server.env, code)
    event = await ws.recv_event("user.updated", timeout=5)
    assert event["data"]["name"] == "second"
