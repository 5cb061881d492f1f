"""The beat -> outbox sweep path on real processes: ``celery -A workers worker -B`` against
the test MariaDB and Redis, with the schedule the workers modules declare (nothing is
configured here but a short interval). An outbox row whose on_commit relay never ran must
come out relayed, with its event in the shared history. Renaming the sweep task (or its beat
entry's task) breaks this test: beat would send a name no worker knows."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from realtime.history import EMPTY_TOPIC_OFFSET, get_history
from realtime.models import OutboxEvent
from tests.e2e.conftest import base_env
from workers.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
# Worker start (Django setup) dominates; the sweep itself runs every SWEEP_INTERVAL.
RELAY_WAIT = 40.0
SWEEP_INTERVAL = "0.5"


class BeatWorker:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def beat_worker(tmp_path: Path) -> Iterator[BeatWorker]:
    queue = f"{celery_app.conf.task_default_queue}-beat-{uuid.uuid4().hex[:8]}"
    env = base_env(
        DATABASE_URL=f"mysql://root@127.0.0.1:3306/{connection.settings_dict['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.REDIS_URL,
        CELERY_QUEUE=queue,
        OUTBOX_SWEEP_INTERVAL=SWEEP_INTERVAL,
        OUTBOX_RELAY_DELAY="0",
        CELERY_SKIP_CHECKS="1",
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "workers",
                "worker",
                "-B",
                "--pool=solo",
                "--loglevel=INFO",
                f"--schedule={tmp_path / 'beat-schedule'}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield BeatWorker(proc, log_path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def test_beat_sweeps_an_unrelayed_outbox_row(beat_worker: BeatWorker) -> None:
    topic = f"user.{uuid.uuid4().int % 10**9 + 10**9}"
    # What a crash between COMMIT and the on_commit relay leaves behind.
    row = OutboxEvent.objects.create(
        topic=topic,
        event="user.updated",
        payload='{"beat": true}',
        created_at=timezone.now() - timedelta(seconds=5),
    )

    deadline = time.monotonic() + RELAY_WAIT
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if row.relayed_at is not None:
            break
        assert beat_worker.proc.poll() is None, f"worker exited:\n{beat_worker.log()}"
        time.sleep(0.2)
    else:
        pytest.fail(f"the row was not relayed within {RELAY_WAIT} s:\n{beat_worker.log()}")

    replay = get_history().read_after(topic, EMPTY_TOPIC_OFFSET)
    assert [(e.event, e.data_json) for e in replay.events] == [("user.updated", '{"beat": true}')]
    assert "realtime.sweep_outbox" in beat_worker.log()
