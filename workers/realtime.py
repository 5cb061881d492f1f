"""Jobs of the realtime core."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from realtime.publish import sweep_outbox

BEAT_SCHEDULE = {
    "realtime-outbox-sweep": {
        "task": "realtime.sweep_outbox",
        "schedule": settings.OUTBOX_SWEEP_INTERVAL,
    },
}


@shared_task(name="realtime.sweep_outbox", ignore_result=True)
def sweep_outbox_job() -> int:
    """Relay outbox rows a crash left behind. Safe to run concurrently (rows are locked)."""
    return sweep_outbox()
