"""Jobs of the realtime core."""

from __future__ import annotations

from celery import shared_task

from realtime.publish import sweep_outbox


@shared_task(name="realtime.sweep_outbox", ignore_result=True)
def sweep_outbox_job() -> int:
    """Relay outbox rows a crash left behind. Safe to run concurrently (rows are locked)."""
    return sweep_outbox()
