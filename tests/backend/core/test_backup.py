"""Backups and point-in-time recovery, through the documented commands (``manage.py backup``
and ``manage.py restore --until``) run as real processes against a private MariaDB with binary
logs (never the machine's shared server)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from backend.core.backup import BackupManifest, _save_manifest, backup_list, backup_prune
from tests.mariadb import PrivateMariaDB

ROOT = Path(__file__).resolve().parents[3]
PYTHON = ROOT / ".venv" / "bin" / "python"


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "DJANGO_SETTINGS_MODULE": "backend.settings",
        "DJANGO_SECRET_KEY": "test-only-backup-secret-key",
        "LOG_FORMAT": "text",
    }
    result = subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result


def labels(server: PrivateMariaDB, database: str) -> set[str]:
    return {row[0] for row in server.execute("SELECT label FROM item", database)}


def test_restore_until_a_moment_keeps_exactly_the_rows_written_before_it(
    private_mariadb: PrivateMariaDB, tmp_path: Path
) -> None:
    database = "pitr_marked"
    private_mariadb.execute(f"CREATE DATABASE {database}")
    private_mariadb.execute(
        "CREATE TABLE item (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(50)) ENGINE=InnoDB",
        database,
    )
    env = {
        "DATABASE_URL": private_mariadb.url(database),
        "BACKUP_STORAGE_URL": f"file://{tmp_path / 'backups'}",
        "TRITON_VAR_DIR": str(tmp_path / "var"),
    }
    private_mariadb.execute("INSERT INTO item (label) VALUES ('in-backup')", database)

    first = manage(env, "backup")
    assert first.returncode == 0, first.stderr
    [manifest] = backup_list(storage=FileSystemStorage(location=tmp_path / "backups"))
    assert manifest.binlog_file and manifest.binlog_position, "the binlog position is recorded"

    # Another database on the same server: its events are in the same binary logs and must not
    # be replayed (they would hit a duplicate key and fail the restore).
    other = "pitr_neighbour"
    private_mariadb.execute(f"CREATE DATABASE {other}")
    private_mariadb.execute("CREATE TABLE note (id INT PRIMARY KEY)", other)
    private_mariadb.execute("INSERT INTO note VALUES (1)", other)

    # Written after the full backup and before the mark: only the binary logs have them.
    private_mariadb.execute("INSERT INTO item (label) VALUES ('before-1')", database)
    private_mariadb.execute("INSERT INTO item (label) VALUES ('before-2')", database)
    private_mariadb.execute(
        "UPDATE item SET label = 'in-backup-edited' WHERE label = 'in-backup'", database
    )

    # Binary log times have whole seconds: the mark is the next one.
    mark = math.floor(time.time()) + 1
    while time.time() < mark:
        time.sleep(0.02)
    private_mariadb.execute("INSERT INTO item (label) VALUES ('after-1')", database)
    private_mariadb.execute("DELETE FROM item WHERE label LIKE 'before-%'", database)
    # A later full backup (after the mark) must not be the one restored.
    second = manage(env, "backup")
    assert second.returncode == 0, second.stderr
    private_mariadb.execute("INSERT INTO item (label) VALUES ('after-2')", database)
    assert labels(private_mariadb, database) == {"in-backup-edited", "after-1", "after-2"}

    until = datetime.fromtimestamp(mark, UTC).strftime("%Y-%m-%d %H:%M:%S")
    restored = manage(env, "restore", "--until", until, "--noinput")
    assert restored.returncode == 0, restored.stderr
    assert manifest.name in restored.stdout
    assert labels(private_mariadb, database) == {"in-backup-edited", "before-1", "before-2"}
    assert private_mariadb.execute("SELECT id FROM note", other) == [(1,)]

    # Without --until: the newest backup, whole.
    whole = manage(env, "restore", "--noinput")
    assert whole.returncode == 0, whole.stderr
    assert labels(private_mariadb, database) == {"in-backup-edited", "after-1"}


def test_restore_refuses_a_moment_before_every_backup(
    private_mariadb: PrivateMariaDB, tmp_path: Path
) -> None:
    database = "pitr_too_early"
    private_mariadb.execute(f"CREATE DATABASE {database}")
    private_mariadb.execute("CREATE TABLE item (label VARCHAR(50))", database)
    private_mariadb.execute("INSERT INTO item VALUES ('kept')", database)
    env = {
        "DATABASE_URL": private_mariadb.url(database),
        "BACKUP_STORAGE_URL": f"file://{tmp_path / 'backups'}",
        "TRITON_VAR_DIR": str(tmp_path / "var"),
    }
    assert manage(env, "backup").returncode == 0
    result = manage(env, "restore", "--until", "2001-01-01 00:00:00", "--noinput")
    assert result.returncode != 0
    assert "no backup taken at or before that time" in result.stderr
    bad = manage(env, "restore", "--until", "yesterday", "--noinput")
    assert bad.returncode != 0
    assert "--until must be a time" in bad.stderr
    assert labels(private_mariadb, database) == {"kept"}


def test_sqlite_backup_is_a_consistent_copy_restored_whole(tmp_path: Path) -> None:
    db_path = tmp_path / "triton.sqlite3"
    with sqlite3.connect(db_path) as connection:
        connection.execute("CREATE TABLE item (label TEXT)")
        connection.execute("INSERT INTO item VALUES ('in-backup')")
    env = {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "BACKUP_STORAGE_URL": f"file://{tmp_path / 'backups'}",
        "TRITON_VAR_DIR": str(tmp_path / "var"),
    }
    result = manage(env, "backup")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db_path) as connection:
        connection.execute("INSERT INTO item VALUES ('later')")

    refused = manage(env, "restore", "--until", "2030-01-01 00:00:00", "--noinput")
    assert refused.returncode != 0
    assert "point-in-time recovery needs MariaDB" in refused.stderr

    restored = manage(env, "restore", "--noinput")
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("SELECT label FROM item").fetchall() == [("in-backup",)]


def _fake_backup(storage: FileSystemStorage, taken_at: datetime) -> BackupManifest:
    name = storage.save(f"triton-{taken_at.strftime('%Y%m%dT%H%M%S%fZ')}.sql.gz", ContentFile(b"x"))
    manifest = BackupManifest(
        name=name, engine="mysql", database="triton", taken_at=taken_at.isoformat(), size=1
    )
    _save_manifest(storage, manifest)
    return manifest


def test_retention_deletes_old_backups_and_always_keeps_the_newest(
    tmp_path: Path, settings
) -> None:
    settings.BACKUP_RETENTION_DAYS = 7
    storage = FileSystemStorage(location=tmp_path)
    now = datetime(2026, 11, 25, 3, 15, tzinfo=UTC)
    old = _fake_backup(storage, now - timedelta(days=8))
    recent = _fake_backup(storage, now - timedelta(days=6))
    deleted = backup_prune(storage=storage, now=now)
    assert deleted == [old.name]
    assert not storage.exists(old.name) and not storage.exists(old.manifest_name)
    assert [m.name for m in backup_list(storage=storage)] == [recent.name]
    # Long after: the newest backup is all there is, so it stays.
    assert backup_prune(storage=storage, now=now + timedelta(days=365)) == []
    assert [m.name for m in backup_list(storage=storage)] == [recent.name]


def test_a_backup_without_its_manifest_does_not_count(tmp_path: Path) -> None:
    storage = FileSystemStorage(location=tmp_path)
    storage.save("triton-20261125T031500000000Z.sql.gz", ContentFile(b"half a dump"))
    assert backup_list(storage=storage) == []
    manifest = _fake_backup(storage, datetime(2026, 11, 24, tzinfo=UTC))
    assert json.loads((tmp_path / manifest.manifest_name).read_text())["name"] == manifest.name


@pytest.mark.django_db
def test_backup_to_s3_is_encrypted_at_rest(s3_server, tmp_path: Path) -> None:
    from tests.s3 import ACCESS_KEY, SECRET_KEY

    bucket = s3_server.create_bucket()
    db_path = tmp_path / "triton.sqlite3"
    with sqlite3.connect(db_path) as connection:
        connection.execute("CREATE TABLE item (label TEXT)")
    env = {
        "DATABASE_URL": f"sqlite:///{db_path}",
        "BACKUP_STORAGE_URL": s3_server.storage_url(bucket, sse="AES256").replace(
            f"s3://{bucket}", f"s3://{bucket}/backups"
        ),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "TRITON_VAR_DIR": str(tmp_path / "var"),
    }
    result = manage(env, "backup")
    assert result.returncode == 0, result.stderr
    client = s3_server.client()
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 2 and all(key.startswith("backups/triton-") for key in keys)
    for key in keys:
        assert client.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    listed = manage(env, "backup", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "triton-" in listed.stdout
