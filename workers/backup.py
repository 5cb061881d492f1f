"""The daily database backup (beat), with retention applied after each one."""

from __future__ import annotations

from celery import shared_task
from celery.schedules import crontab
from django.conf import settings

from backend.core.backup import backup_create

BEAT_SCHEDULE = {
    "backup-daily": {
        "task": "backup.create",
        "schedule": crontab(hour=settings.BACKUP_HOUR, minute=settings.BACKUP_MINUTE),
    },
}


# acks_late off: a dump outlasting the broker's visibility timeout must not be handed to a second
# worker and run twice. A failed dump is retried by the next run or an operator (manage.py backup).
@shared_task(name="backup.create", ignore_result=True, acks_late=False)
def backup_create_job(alias: str = "default") -> str:
    return backup_create(alias=alias).name
