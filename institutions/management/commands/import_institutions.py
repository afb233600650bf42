from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clinicnet.audit.services import audit_record
from institutions.csv_import import ImportReport, import_institutions_csv


def print_report(report: ImportReport, write: Any, error: Any) -> None:
    for message in report.file_errors:
        error(f"file: {message}")
    for row in report.rows:
        if row.errors:
            for message in row.errors:
                error(f"line {row.line} ({row.code or '-'}): {message}")
    summary = report.summary()
    mode = "dry run, nothing written" if report.dry_run else ("applied" if report.applied else "nothing written")
    write(
        f"{summary['created']} created, {summary['updated']} updated, {summary['unchanged']} unchanged, "
        f"{summary['invalid']} invalid ({mode})"
    )


class Command(BaseCommand):
    help = "Import institutions from a UTF-8 CSV file (Korean or English headers); see README.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
        parser.add_argument("--skip-invalid", action="store_true", help="import the valid rows even if some are bad")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
        report = import_institutions_csv(data, dry_run=options["dry_run"], skip_invalid=options["skip_invalid"])
        audit_record(
            action="institutions.import",
            actor_label="manage.py import_institutions",
            object_type="csv",
            object_id=str(path)[:128],
            detail={
                "dry_run": report.dry_run,
                "applied": report.applied,
                **report.summary(),
                "file_errors": report.file_errors,
            },
        )
        print_report(report, self.stdout.write, self.stderr.write)
        if report.file_errors:
            raise CommandError("the file cannot be imported; nothing was written")
        if report.invalid_rows and not options["skip_invalid"]:
            raise CommandError(
                f"{len(report.invalid_rows)} invalid rows; nothing was written. Fix them, or pass --skip-invalid."
            )
