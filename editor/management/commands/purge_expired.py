"""``python manage.py purge_expired [--dry-run]``: delete what has outlived the retention policy.

Expired images with their jobs, results and every stored file; jobs stuck running past the
time limit (failed, with a reason); finished task records older than the retention period;
expired sessions. Each server process also runs this every PURGE_INTERVAL_S seconds; cron
it where that is turned off. Running it twice, or beside a running job, is safe.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from editor.retention import run_maintenance


class Command(BaseCommand):
    help = "Delete expired images and their files, and fail jobs stuck past the time limit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be purged, change nothing"
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        report = run_maintenance(dry_run=dry_run)
        verb = "Would purge" if dry_run else "Purged"
        self.stdout.write(f"{verb} {len(report.images)} expired image(s).")
        if options["verbosity"] >= 2:
            for image_id in report.images:
                self.stdout.write(f"  image {image_id}")
        fail = "Would fail" if dry_run else "Failed"
        self.stdout.write(f"{fail} {len(report.overdue_jobs)} job(s) stuck past the time limit.")
        if options["verbosity"] >= 2:
            for job_id in report.overdue_jobs:
                self.stdout.write(f"  job {job_id}")
        recovery = report.recovery
        requeue = "Would start again" if dry_run else "Started again"
        self.stdout.write(
            f"{requeue} {len(recovery.requeued)} job(s) whose worker went silent; "
            f"{fail.lower()} {len(recovery.failed)} that had used up their attempts."
        )
        delete = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{delete} {report.task_records} old task record(s).")
