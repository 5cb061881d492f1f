"""A process that dies between COMMIT and its on_commit relay loses no event."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from realtime.history import get_history
from realtime.models import OutboxEvent
from realtime.publish import sweep_outbox
from tests.factories import UserFactory, bearer_for
from tests.realtime.conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
CRASHING_WRITER = """
import os
import django

django.setup()
from django.db import transaction
from realtime.publish import publish

with transaction.atomic():
    # Runs before publish()'s own hook: the process dies right after COMMIT.
    transaction.on_commit(lambda: os._exit(17))
    publish("{topic}", "user.updated", {{"survived": True}})
"""


def run_crashing_writer(topic: str) -> int:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings",
        "DATABASE_URL": f"mysql://root@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER.format(topic=topic)],
        cwd=ROOT,
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    return result.returncode


async def test_event_committed_by_a_crashed_process_is_swept_to_subscribers(open_socket) -> None:
    user = await run_sync(UserFactory)
    topic = f"user.{user.pk}"
    socket = await open_socket(await run_sync(bearer_for, user))
    await socket.subscribe(topic)
    before = get_history().latest(topic)

    assert await run_sync(run_crashing_writer, topic) == 17
    row = await run_sync(OutboxEvent.objects.get, topic=topic)
    assert row.relayed_at is None  # committed, never relayed
    assert get_history().latest(topic) == before
    assert await socket.nothing(0.3)

    # Other rows of the run may be swept too: this topic's row is what must go out.
    assert await run_sync(sweep_outbox, older_than=timedelta(0)) >= 1
    await run_sync(row.refresh_from_db)
    assert row.relayed_at is not None
    event = await socket.recv()
    assert event["event"] == "user.updated"
    assert event["data"] == {"survived": True}
