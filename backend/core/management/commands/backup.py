"""``manage.py backup``: a full backup of the database into the backups storage.

MariaDB: mariadb-dump --single-transaction --master-data=2 (the binary log position is kept in
the backup's manifest for point-in-time recovery). SQLite: a consistent copy. Older backups than
BACKUP_RETENTION_DAYS are deleted afterwards (the newest always stays). ``--list`` shows them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.core.backup import BackupError, backup_create, backup_list


class Command(BaseCommand):
    help = "Take a full database backup into BACKUP_STORAGE_URL (or --list the backups)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="database alias")
        parser.add_argument("--list", action="store_true", help="list the complete backups")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["list"]:
                for manifest in backup_list():
                    position = (
                        f"{manifest.binlog_file}:{manifest.binlog_position}"
                        if manifest.binlog_file
                        else "no binlog position"
                    )
                    self.stdout.write(
                        f"{manifest.taken_at}  {manifest.name}  {manifest.size} bytes  {position}"
                    )
                return
            manifest = backup_create(alias=options["database"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if manifest.binlog_file is None and manifest.engine == "mysql":
            self.stderr.write(
                "warning: the server writes no binary log: this backup cannot be used for "
                "point-in-time recovery (start MariaDB with --log-bin)"
            )
        self.stdout.write(
            f"backup {manifest.name} ({manifest.size} bytes, taken {manifest.taken_at}"
            + (
                f", binlog {manifest.binlog_file}:{manifest.binlog_position})"
                if manifest.binlog_file
                else ")"
            )
        )
