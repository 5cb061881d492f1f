"""The one Celery app. ``celery -A workers worker -B`` runs jobs and the beat schedule."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("triton")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers.accounts", "workers.realtime", "workers.commerce"], related_name=None)
