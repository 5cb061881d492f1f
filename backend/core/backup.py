"""Database backups and point-in-time recovery.

MariaDB/MySQL: a full logical dump (``mariadb-dump --single-transaction --master-data=2``)
records the binary log file and position of its snapshot. :func:`restore` loads the newest full
backup taken at or before the wanted moment, then replays the server's binary logs from that
position up to the moment (``mariadb-binlog --start-position ... --stop-datetime ...``).
SQLite (the embedded default): a consistent copy made with the sqlite3 backup API, restored
whole (no point in time).

Backups go to the ``backups`` storage (``BACKUP_STORAGE_URL``: a local folder or S3, parsed like
``STORAGE_URL``), as ``triton-<UTC time>.sql.gz`` (or ``.sqlite3.gz``) beside a JSON manifest
written last: a backup without its manifest (an interrupted one) does not exist for restore.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

MYSQL_ENGINES = ("django.db.backends.mysql", "backend.core.mysql")
SQLITE_ENGINE = "django.db.backends.sqlite3"
MANIFEST_SUFFIX = ".json"
NAME_PREFIX = "triton-"
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_CHUNK = 1024 * 1024
# mariadb-dump --master-data=2 writes this (commented out) near the top of the dump.
_POSITION = re.compile(rb"CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)")
_POSITION_SEARCH_BYTES = 64 * 1024
# Tools run with a bounded time: a stuck dump must not hold a worker forever.
TOOL_TIMEOUT = 6 * 3600


class BackupError(Exception):
    """A backup or restore could not be done; the message says why, for an operator."""


@dataclass(frozen=True)
class BackupManifest:
    name: str  # the data object's name in the backups storage
    engine: str  # "mysql" or "sqlite"
    database: str
    taken_at: str  # ISO 8601, UTC
    size: int
    binlog_file: str | None = None
    binlog_position: int | None = None

    @property
    def taken_at_datetime(self) -> datetime:
        return datetime.fromisoformat(self.taken_at)

    @property
    def manifest_name(self) -> str:
        return manifest_name_for(self.name)


@dataclass(frozen=True)
class RestoreResult:
    backup: BackupManifest
    until: datetime | None
    binlog_files: tuple[str, ...]


def manifest_name_for(data_name: str) -> str:
    return data_name.rsplit(".", 2)[0] + MANIFEST_SUFFIX


def backup_storage() -> Storage:
    return storages["backups"]


def _engine(settings_dict: dict[str, Any]) -> str:
    engine = settings_dict["ENGINE"]
    if engine in MYSQL_ENGINES:
        return "mysql"
    if engine == SQLITE_ENGINE:
        return "sqlite"
    raise BackupError(f"backups support MariaDB/MySQL and SQLite, not {engine}")


def _database_settings(alias: str) -> dict[str, Any]:
    try:
        return dict(settings.DATABASES[alias])
    except KeyError:
        raise BackupError(f"no database {alias!r} in DATABASES") from None


# --- MariaDB client options ----------------------------------------------------------------------


@contextmanager
def _client_options(settings_dict: dict[str, Any]) -> Iterator[str]:
    """A private option file for the MariaDB tools (the password never appears in ``ps``)."""
    host = str(settings_dict.get("HOST") or "127.0.0.1")
    lines = ["[client]", f"user={settings_dict.get('USER') or 'root'}"]
    if settings_dict.get("PASSWORD"):
        password = str(settings_dict["PASSWORD"]).replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'password="{password}"')
    if host.startswith("/"):
        lines.append(f"socket={host}")
    else:
        lines.append(f"host={host}")
        lines.append("protocol=tcp")
        if settings_dict.get("PORT"):
            lines.append(f"port={settings_dict['PORT']}")
    # Not in [client]: mariadb-binlog would refuse it as an unknown option.
    lines += ["[mysql]", "default-character-set=utf8mb4"]
    lines += ["[mysqldump]", "default-character-set=utf8mb4"]
    handle, path = tempfile.mkstemp(prefix="triton-db-", suffix=".cnf")
    try:
        with os.fdopen(handle, "w") as option_file:  # mkstemp: mode 0600
            option_file.write("\n".join(lines) + "\n")
        yield f"--defaults-extra-file={path}"
    finally:
        os.unlink(path)


def _tool(name: str) -> str:
    """The MariaDB tool ``name`` (or its MySQL-era alias)."""
    aliases = {
        "mariadb": ("mariadb", "mysql"),
        "mariadb-dump": ("mariadb-dump", "mysqldump"),
        "mariadb-binlog": ("mariadb-binlog", "mysqlbinlog"),
    }
    for candidate in aliases[name]:
        path = shutil.which(candidate)
        if path:
            return path
    raise BackupError(f"{name} is not installed (Debian: apt-get install mariadb-client)")


def _sql(settings_dict: dict[str, Any], sql: str) -> str:
    with _client_options(settings_dict) as options:
        result = subprocess.run(  # noqa: S603 - fixed tool, arguments are not shell-parsed
            [_tool("mariadb"), options, "--batch", "--skip-column-names", "-e", sql],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if result.returncode != 0:
        raise BackupError(f"mariadb failed: {result.stderr.strip()}")
    return result.stdout


def _quote_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def binary_logging_enabled(settings_dict: dict[str, Any]) -> bool:
    return _sql(settings_dict, "SELECT @@log_bin").strip() == "1"


# --- Backup ------------------------------------------------------------------------------------


def _new_name(engine: str, taken_at: datetime) -> str:
    suffix = ".sql.gz" if engine == "mysql" else ".sqlite3.gz"
    return f"{NAME_PREFIX}{taken_at.strftime(_TIME_FORMAT)}{suffix}"


def _dump_mysql(settings_dict: dict[str, Any], out: IO[bytes]) -> tuple[str | None, int | None]:
    """Dump the database gzipped into ``out``; the binlog file and position of its snapshot
    (None when the server does not write binary logs: then no point-in-time recovery)."""
    with_position = binary_logging_enabled(settings_dict)
    with _client_options(settings_dict) as options:
        command = [
            _tool("mariadb-dump"),
            options,
            # One consistent InnoDB snapshot, without locking the tables for the dump's length.
            "--single-transaction",
            "--quick",
            "--hex-blob",
            "--triggers",
            "--no-tablespaces",
            *(["--master-data=2"] if with_position else []),
            str(settings_dict["NAME"]),
        ]
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)  # noqa: S603
            assert proc.stdout is not None
            head = b""
            try:
                with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as compressed:
                    while chunk := proc.stdout.read(_CHUNK):
                        if len(head) < _POSITION_SEARCH_BYTES:
                            head += chunk[:_POSITION_SEARCH_BYTES]
                        compressed.write(chunk)
            except BaseException:
                proc.kill()  # e.g. the temporary disk is full: no dump left running
                proc.wait()
                raise
            returncode = proc.wait(timeout=TOOL_TIMEOUT)
            if returncode != 0:
                errors.seek(0)
                raise BackupError(f"mariadb-dump failed: {errors.read().decode(errors='replace')}")
    if not with_position:
        return None, None
    match = _POSITION.search(head)
    if not match:
        raise BackupError("mariadb-dump wrote no binary log position")
    return match.group(1).decode(), int(match.group(2))


def _copy_sqlite(settings_dict: dict[str, Any], out: IO[bytes]) -> None:
    """A consistent copy even while the server writes (sqlite3 online backup API)."""
    with tempfile.TemporaryDirectory() as folder:
        copy_path = Path(folder) / "copy.sqlite3"
        source = sqlite3.connect(str(settings_dict["NAME"]))
        target = sqlite3.connect(str(copy_path))
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        with copy_path.open("rb") as copy, gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
            shutil.copyfileobj(copy, gz, _CHUNK)


def backup_create(
    *, alias: str = "default", storage: Storage | None = None, now: datetime | None = None
) -> BackupManifest:
    """Take a full backup of database ``alias`` into the backups storage, then apply retention."""
    storage = storage or backup_storage()
    settings_dict = _database_settings(alias)
    engine = _engine(settings_dict)
    taken_at = (now or datetime.now(UTC)).astimezone(UTC)
    binlog_file: str | None = None
    binlog_position: int | None = None
    with tempfile.TemporaryFile() as data:
        if engine == "mysql":
            binlog_file, binlog_position = _dump_mysql(settings_dict, data)
        else:
            _copy_sqlite(settings_dict, data)
        size = data.tell()
        data.seek(0)
        name = storage.save(_new_name(engine, taken_at), File(data))
    manifest = BackupManifest(
        name=name,
        engine=engine,
        database=str(settings_dict["NAME"]),
        taken_at=taken_at.isoformat(),
        size=size,
        binlog_file=binlog_file,
        binlog_position=binlog_position,
    )
    _save_manifest(storage, manifest)
    backup_prune(storage=storage, now=taken_at)
    return manifest


def _save_manifest(storage: Storage, manifest: BackupManifest) -> None:
    body = json.dumps(asdict(manifest), indent=2).encode()
    with tempfile.TemporaryFile() as data:
        data.write(body)
        data.seek(0)
        storage.save(manifest.manifest_name, File(data))


def backup_list(*, storage: Storage | None = None) -> list[BackupManifest]:
    """Complete backups (those with a manifest), oldest first."""
    storage = storage or backup_storage()
    try:
        _, files = storage.listdir("")
    except FileNotFoundError:
        return []
    manifests = []
    for file_name in files:
        if not (file_name.startswith(NAME_PREFIX) and file_name.endswith(MANIFEST_SUFFIX)):
            continue
        with storage.open(file_name, "rb") as handle:
            manifests.append(BackupManifest(**json.loads(handle.read())))
    return sorted(manifests, key=lambda manifest: manifest.taken_at_datetime)


def backup_prune(*, storage: Storage | None = None, now: datetime | None = None) -> list[str]:
    """Delete backups older than BACKUP_RETENTION_DAYS; the newest one is always kept."""
    storage = storage or backup_storage()
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.BACKUP_RETENTION_DAYS)
    deleted = []
    for manifest in backup_list(storage=storage)[:-1]:
        if manifest.taken_at_datetime < cutoff:
            # Manifest first: a half-deleted backup is then an orphan, never a broken restore.
            storage.delete(manifest.manifest_name)
            storage.delete(manifest.name)
            deleted.append(manifest.name)
    return deleted


# --- Restore -----------------------------------------------------------------------------------


def _choose_backup(
    manifests: list[BackupManifest], *, until: datetime | None, name: str | None
) -> BackupManifest:
    if name is not None:
        for manifest in manifests:
            if name in (manifest.name, manifest.manifest_name):
                return manifest
        raise BackupError(f"no backup named {name!r}")
    candidates = [m for m in manifests if until is None or m.taken_at_datetime <= until]
    if not candidates:
        raise BackupError(
            "no backup taken at or before that time" if until else "there is no backup to restore"
        )
    return candidates[-1]


def _binlog_index(file_name: str) -> tuple[str, int]:
    stem, _, number = file_name.rpartition(".")
    if not number.isdigit():
        raise BackupError(f"not a binary log file name: {file_name}")
    return stem, int(number)


def _binlogs_from(folder: Path, first: str) -> list[Path]:
    """``first`` and every later binary log of the same series in ``folder``, in order."""
    stem, start = _binlog_index(first)
    found = []
    for path in folder.iterdir():
        name_stem, _, number = path.name.rpartition(".")
        if name_stem == stem and number.isdigit() and int(number) >= start:
            found.append((int(number), path))
    if not found or found[0][0] != start:
        raise BackupError(f"binary log {first} is not in {folder} (purged too early?)")
    return [path for _, path in sorted(found)]


def _fetch_binlogs(settings_dict: dict[str, Any], first: str, folder: Path) -> None:
    """Copy the server's binary logs from ``first`` to the newest into ``folder`` (raw)."""
    with _client_options(settings_dict) as options:
        result = subprocess.run(  # noqa: S603
            [
                _tool("mariadb-binlog"),
                options,
                "--read-from-remote-server",
                "--raw",
                "--to-last-log",
                f"--result-file={folder}/",
                first,
            ],
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise BackupError(
            f"reading the binary logs from the server failed (purged too early?): "
            f"{result.stderr.strip()}"
        )


def _binlog_events(
    manifest: BackupManifest, binlogs: list[Path], until: datetime, out: IO[bytes]
) -> None:
    """The SQL of the database's events from the backup's position up to ``until`` (exclusive;
    binary log times have whole seconds)."""
    assert manifest.binlog_position is not None
    result = subprocess.run(  # noqa: S603
        [
            _tool("mariadb-binlog"),
            "--no-defaults",
            f"--start-position={manifest.binlog_position}",
            f"--stop-datetime={until.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')}",
            f"--database={manifest.database}",
            *[str(path) for path in binlogs],
        ],
        stdout=out,
        stderr=subprocess.PIPE,
        # mariadb-binlog reads --stop-datetime in the local time zone.
        env={**os.environ, "TZ": "UTC"},
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"mariadb-binlog failed: {result.stderr.decode(errors='replace')}")


def _run_sql_stream(
    settings_dict: dict[str, Any], database: str, source: IO[bytes] | gzip.GzipFile
) -> None:
    with _client_options(settings_dict) as options, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(  # noqa: S603
            [_tool("mariadb"), options, "--binary-mode", database],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        assert proc.stdin is not None
        try:
            shutil.copyfileobj(source, proc.stdin, _CHUNK)
        except BrokenPipeError:
            pass  # the client stopped early: its exit status and errors say why
        finally:
            proc.stdin.close()
        if proc.wait(timeout=TOOL_TIMEOUT) != 0:
            errors.seek(0)
            raise BackupError(f"mariadb failed: {errors.read().decode(errors='replace')}")


def _restore_mysql(
    settings_dict: dict[str, Any],
    storage: Storage,
    manifest: BackupManifest,
    until: datetime | None,
    binlog_dir: Path | None,
) -> tuple[str, ...]:
    database = str(settings_dict["NAME"])
    with tempfile.TemporaryDirectory(prefix="triton-restore-") as work:
        work_dir = Path(work)
        binlogs: list[Path] = []
        events_path = work_dir / "events.sql"
        if until is not None:
            if manifest.binlog_file is None or manifest.binlog_position is None:
                raise BackupError(
                    f"backup {manifest.name} has no binary log position (binary logging was off):"
                    " it can be restored whole, not to a point in time"
                )
            # Collected before the restore writes anything (its own writes are logged too).
            if binlog_dir is None:
                _fetch_binlogs(settings_dict, manifest.binlog_file, work_dir)
                binlogs = _binlogs_from(work_dir, manifest.binlog_file)
            else:
                binlogs = _binlogs_from(binlog_dir, manifest.binlog_file)
            with events_path.open("wb") as events:
                _binlog_events(manifest, binlogs, until, events)
        collation = str(settings_dict.get("OPTIONS", {}).get("collation", "utf8mb4_unicode_ci"))
        quoted = _quote_name(database)
        _sql(
            settings_dict,
            f"DROP DATABASE IF EXISTS {quoted}; "
            f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE {collation}",
        )
        with storage.open(manifest.name, "rb") as stored, gzip.GzipFile(fileobj=stored) as dump:
            _run_sql_stream(settings_dict, database, dump)
        if until is not None:
            with events_path.open("rb") as events:
                _run_sql_stream(settings_dict, database, events)
    return tuple(path.name for path in binlogs)


def _restore_sqlite(
    settings_dict: dict[str, Any], storage: Storage, manifest: BackupManifest
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        copy_path = Path(folder) / "copy.sqlite3"
        with (
            storage.open(manifest.name, "rb") as stored,
            gzip.GzipFile(fileobj=stored) as gz,
            copy_path.open("wb") as copy,
        ):
            shutil.copyfileobj(gz, copy, _CHUNK)
        source = sqlite3.connect(str(copy_path))
        target = sqlite3.connect(str(settings_dict["NAME"]))
        try:
            source.backup(target)  # page by page into the live file, under SQLite's locks
        finally:
            target.close()
            source.close()


def restore(
    *,
    until: datetime | None = None,
    backup_name: str | None = None,
    alias: str = "default",
    storage: Storage | None = None,
    binlog_dir: Path | None = None,
) -> RestoreResult:
    """Replace database ``alias`` by a backup: the newest one taken at or before ``until`` (or
    ``backup_name``), then, with ``until``, the binary logs replayed up to that moment.

    The binary logs are read from the server itself, or from ``binlog_dir`` (archived copies)."""
    storage = storage or backup_storage()
    settings_dict = _database_settings(alias)
    engine = _engine(settings_dict)
    if until is not None:
        until = until.astimezone(UTC)
    manifest = _choose_backup(backup_list(storage=storage), until=until, name=backup_name)
    if manifest.engine != engine:
        raise BackupError(f"backup {manifest.name} is of a {manifest.engine} database")
    if engine == "sqlite":
        if until is not None:
            raise BackupError(
                "point-in-time recovery needs MariaDB with binary logs; a SQLite backup is "
                "restored whole (leave out --until)"
            )
        _restore_sqlite(settings_dict, storage, manifest)
        return RestoreResult(backup=manifest, until=None, binlog_files=())
    binlogs = _restore_mysql(settings_dict, storage, manifest, until, binlog_dir)
    return RestoreResult(backup=manifest, until=until, binlog_files=binlogs)
