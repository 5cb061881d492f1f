"""The one Celery app. ``celery -A workers worker -B`` runs jobs and the beat schedule.

Every module of the ``workers`` package is a job module: it is imported when a worker, a
beat or the Django process (first ``enqueue_on_commit``) loads its tasks, and its optional
``BEAT_SCHEDULE`` dict is merged into the app's beat schedule. Nothing lists them by hand.
"""

from __future__ import annotations

import os
import pkgutil
from importlib import import_module
from pathlib import Path
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")


def job_module_names() -> list[str]:
    """``workers.<name>`` for every module of this package except the app itself."""
    package_dir = Path(__file__).resolve().parent
    return sorted(
        f"workers.{module.name}"
        for module in pkgutil.iter_modules([str(package_dir)])
        if module.name != "celery" and not module.name.startswith("_")
    )


# ``include``: the loader imports these wherever it loads tasks (worker, beat, enqueue).
app = Celery("triton", include=job_module_names())
app.config_from_object("django.conf:settings", namespace="CELERY")
# The current app for every thread (set_as_current covers only the importing thread): ASGI
# and frame handlers run services in worker threads, and backend.core.jobs uses current_app.
app.set_default()


def merge_beat_schedules(sender: Celery | None = None, **_: Any) -> None:
    """Import the job modules and merge their BEAT_SCHEDULE entries (a duplicate entry name
    across modules is a mistake: it raises)."""
    schedule: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}
    for name in job_module_names():
        module = import_module(name)
        for entry, spec in getattr(module, "BEAT_SCHEDULE", {}).items():
            if entry in owners:
                raise ValueError(f"beat entry {entry!r} is declared by {owners[entry]} and {name}")
            owners[entry] = name
            schedule[entry] = spec
    app.conf.beat_schedule = {**schedule, **(app.conf.beat_schedule or {})}


# Sent by loader.import_default_modules() when a worker or a beat starts (after Celery's
# Django fixup has set Django up).
signals.import_modules.connect(merge_beat_schedules, sender=app, weak=False)
