"""``manage.py import_dicom PATH... --institution CODE``: bulk-load DICOM files, folders and zips.

Everything goes through the one ingest path (``EntryPoint.IMPORT``) after
:func:`imaging.archive.expand_upload` has opened zips and walked folders.
Previews are scheduled as the import goes (the session is closed every
``CLOSE_EVERY`` files and at the end of each path), so a long import does not
keep readers waiting for its last file. Without a Celery worker (the embedded
default) this process renders them itself, and waits for them before it exits.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from clinicnet.tasks import wait_for_threads
from imaging.archive import count_entries, expand_upload, ingest_entry
from imaging.ingest import UPLOAD_BATCH, EntryPoint, IngestResult, IngestSession, Outcome
from institutions.models import Institution

CLOSE_EVERY = 500
OUTCOMES = [Outcome.STORED, Outcome.DUPLICATE, Outcome.CONFLICT, Outcome.REJECTED, Outcome.SKIPPED]
FAILURES = {Outcome.CONFLICT, Outcome.REJECTED}


class Progress:
    """One ``\\r`` line on stderr: files done/total, MB/s; redrawn at most five times a second."""

    def __init__(self, stream: OutputWrapper, total: int, enabled: bool) -> None:
        self.stream = stream
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.bytes = 0
        self.failed = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def add(self, result: IngestResult) -> None:
        self.done += 1
        self.bytes += result.size
        self.failed += result.outcome in FAILURES
        self.total = max(self.total, self.done)
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.2:
            self._drawn = now
            self.draw()

    def draw(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        line = (
            f"\r{self.done}/{self.total} files  {self.bytes / 1e6:,.1f} MB  {self.bytes / 1e6 / elapsed:,.1f} MB/s"
            f"  {self.failed} failed"
        )
        self.stream.write(line.ljust(70), ending="")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.draw()
            self.stream.write("")
            self.stream.flush()


class Command(BaseCommand):
    help = (
        "Import DICOM files, folders (a CD copied to disk) and zips into an institution's archive. "
        "Exits non-zero when a file failed (conflict or rejected) unless --allow-failures."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="DICOM files, folders or zips")
        parser.add_argument("--institution", required=True, metavar="CODE", help="8-digit institution code")
        parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
        parser.add_argument("--allow-failures", action="store_true", help="exit 0 even when some files were refused")

    def handle(self, *args: Any, **options: Any) -> None:
        code = options["institution"]
        institution = Institution.objects.filter(code=code).first()
        if institution is None:
            raise CommandError(f"no institution with code {code}")
        if not institution.is_active:
            raise CommandError(f"institution {code} ({institution.name_ko}) is inactive; activate it first")
        paths: list[Path] = options["paths"]
        progress = Progress(self.stderr, sum(count_entries(p) for p in paths if p.exists()), not options["no_progress"])
        session = IngestSession(
            institution=institution,
            entry_point=EntryPoint.IMPORT,
            actor_label="manage.py import_dicom",
            # The progress line counts the failures found as files are added; the final report has them all.
            batch_size=UPLOAD_BATCH,
        )
        try:
            for path in paths:
                if not path.exists():
                    missing = IngestResult(str(path), Outcome.REJECTED, "no such file or folder")
                    session.results.append(missing)
                    progress.add(missing)
                    continue
                for entry in expand_upload(path, str(path)):
                    progress.add(ingest_entry(session, entry))
                    if progress.done % CLOSE_EVERY == 0:
                        session.close()
                session.close()
        finally:
            session.close()
            progress.finish()
        self.report(session.results, institution, progress)
        self.finish_previews(session.results)
        failed = sum(1 for result in session.results if result.outcome in FAILURES)
        if failed and not options["allow_failures"]:
            raise CommandError(f"{failed} of {len(session.results)} files failed (listed above)")

    def finish_previews(self, results: list[IngestResult]) -> None:
        """In the embedded mode the previews render in this process's threads: wait for them.

        Leaving earlier would end the process with them half done (interrupted
        at interpreter exit, and the pages never told).
        """
        if settings.TASK_MODE != "thread" or not any(result.outcome == Outcome.STORED for result in results):
            return
        started = time.monotonic()
        self.stdout.write("Rendering the previews in this process (no Celery worker is configured) ...")
        self.stdout.flush()
        wait_for_threads()
        self.stdout.write(f"  previews done in {time.monotonic() - started:.1f} s")

    def report(self, results: list[IngestResult], institution: Institution, progress: Progress) -> None:
        elapsed = max(time.monotonic() - progress.started, 1e-6)
        counts = Counter(result.outcome for result in results)
        self.stdout.write(
            f"{len(results)} files, {progress.bytes / 1e6:,.1f} MB in {elapsed:.1f} s "
            f"({len(results) / elapsed:,.0f} files/s, {progress.bytes / 1e6 / elapsed:,.1f} MB/s) "
            f"for {institution.name_ko} ({institution.code})"
        )
        self.stdout.write("  " + ", ".join(f"{outcome} {counts[outcome]}" for outcome in OUTCOMES))
        for title, wanted in (("Failed", FAILURES), ("Skipped", {Outcome.SKIPPED})):
            listed = [result for result in results if result.outcome in wanted]
            if listed:
                self.stdout.write(f"{title}:")
                for result in listed:
                    self.stdout.write(f"  {result.name}: {result.outcome}: {result.reason}")
