"""``python manage.py check_storage [--repair] [--min-age SECONDS]``: compare stored files
with the database.

Reports orphaned files (in storage, no row refers to them) and rows whose files are gone;
exits non-zero when it finds any and was not asked to repair them. See editor.storage_check
for what ``--repair`` does to each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from editor.storage_check import DEFAULT_MIN_AGE, check_storage, repair


class Command(BaseCommand):
    help = "Report (and with --repair, fix) orphaned files and rows whose files are missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--repair",
            action="store_true",
            help="delete orphaned files, and rows whose files are gone (their jobs fail)",
        )
        parser.add_argument(
            "--min-age",
            type=float,
            default=DEFAULT_MIN_AGE.total_seconds(),
            metavar="SECONDS",
            help="ignore files younger than this, which uploads and jobs may still be "
            "writing (default: %(default)g)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["min_age"] < 0:
            raise CommandError("--min-age must be zero or more seconds")
        report = check_storage(min_age=timedelta(seconds=options["min_age"]))
        self.stdout.write(f"Orphaned files (stored, no row): {len(report.orphans)}")
        for name in report.orphans:
            self.stdout.write(f"  {name}")
        self.stdout.write(f"Rows without files: {len(report.missing)}")
        for missing in report.missing:
            self.stdout.write(f"  {missing}")
        if report.clean:
            self.stdout.write("Storage and database agree.")
        elif options["repair"]:
            repair(report)
            self.stdout.write("Repaired.")
        else:
            raise CommandError("storage and database disagree: run with --repair to fix it")
