"""Every module of the workers package is discovered, and its beat entries are merged."""

from __future__ import annotations

from workers.celery import app as celery_app
from workers.celery import job_module_names, merge_beat_schedules


def test_every_workers_module_is_a_job_module() -> None:
    assert {"workers.accounts", "workers.realtime"} <= set(job_module_names())
    assert "workers.celery" not in job_module_names()
    assert set(job_module_names()) <= set(celery_app.loader.default_modules)


def test_beat_entries_come_from_the_modules_and_name_registered_tasks() -> None:
    merge_beat_schedules()  # what a worker or a beat does at start (import_modules signal)
    schedule = celery_app.conf.beat_schedule
    assert schedule["realtime-outbox-sweep"]["task"] == "realtime.sweep_outbox"
    assert schedule["accounts-purge-expired-tokens"]["task"] == "accounts.purge_expired_tokens"
    for entry, spec in schedule.items():
        assert spec["task"] in celery_app.tasks, f"beat entry {entry} names no registered task"
