"""``manage.py restore [--until "<timestamp>"]``: replace the database by a backup.

Without ``--until``: the newest backup (or ``--backup NAME``) restored whole. With it: the
newest backup taken at or before that moment, then the binary logs replayed from the backup's
position up to it (exclusive, whole seconds; a time without offset is UTC). Destructive: the
database is dropped and recreated; asks for confirmation unless ``--noinput``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from backend.core.backup import BackupError, restore


def parse_until(value: str) -> datetime:
    moment = parse_datetime(value.strip())
    if moment is None:
        raise CommandError(
            f'--until must be a time like "2026-11-25 17:30:00" (UTC), not {value!r}'
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Restore the database from a backup, optionally to a point in time (--until)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--until", help='restore up to this moment, e.g. "2026-11-25 17:30:00"')
        parser.add_argument("--backup", help="the backup to restore (default: the newest fitting)")
        parser.add_argument("--database", default="default", help="database alias")
        parser.add_argument(
            "--binlog-dir",
            type=Path,
            help="archived binary logs to replay (default: read them from the server)",
        )
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args: Any, **options: Any) -> None:
        until = parse_until(options["until"]) if options["until"] else None
        if options["interactive"]:
            answer = input(
                f"This REPLACES database '{options['database']}' with a backup"
                + (f" replayed up to {until.isoformat()}" if until else "")
                + ". Type 'yes' to continue: "
            )
            if answer != "yes":
                raise CommandError("restore cancelled")
        try:
            result = restore(
                until=until,
                backup_name=options["backup"],
                alias=options["database"],
                binlog_dir=options["binlog_dir"],
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        replayed = (
            f", binary logs {', '.join(result.binlog_files)} replayed up to "
            f"{result.until.isoformat()}"
            if result.until
            else ""
        )
        self.stdout.write(
            f"restored {result.backup.name} (taken {result.backup.taken_at}){replayed}"
        )
