"""The daily backup job: scheduled by beat, and a run leaves a complete backup behind."""

from __future__ import annotations

import warnings
from pathlib import Path

from celery.schedules import crontab
from django.core.files.storage import FileSystemStorage

from backend.core.backup import backup_list
from tests.mariadb import PrivateMariaDB
from workers.backup import backup_create_job
from workers.celery import app as celery_app
from workers.celery import merge_beat_schedules


def test_beat_runs_the_backup_daily_at_the_configured_time(settings) -> None:
    merge_beat_schedules()
    entry = celery_app.conf.beat_schedule["backup-daily"]
    assert entry["task"] == "backup.create"
    assert entry["task"] in celery_app.tasks
    assert entry["schedule"] == crontab(hour=settings.BACKUP_HOUR, minute=settings.BACKUP_MINUTE)


def test_the_job_takes_a_backup_with_its_binlog_position(
    private_mariadb: PrivateMariaDB, tmp_path: Path, settings
) -> None:
    private_mariadb.execute("CREATE DATABASE backup_job")
    private_mariadb.execute("CREATE TABLE item (label VARCHAR(50))", "backup_job")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding setting DATABASES": only read here
        settings.DATABASES = {
            **settings.DATABASES,
            "backup_job": {
                "ENGINE": "django.db.backends.mysql",
                "NAME": "backup_job",
                "USER": "root",
                "PASSWORD": "",
                "HOST": "127.0.0.1",
                "PORT": private_mariadb.port,
            },
        }
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    name = backup_create_job.apply(kwargs={"alias": "backup_job"}).get(timeout=120)
    [manifest] = backup_list(storage=FileSystemStorage(location=tmp_path))
    assert manifest.name == name and manifest.database == "backup_job"
    assert manifest.binlog_file and manifest.binlog_position
    assert (tmp_path / name).stat().st_size == manifest.size > 0
