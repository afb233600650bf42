"""``manage.py cleanup_storage [--dry-run] [--older-than MINUTES]``: remove what no index row points to.

Finds, in the storage (local folder or S3):

* DICOM files no Instance row points to — the ingest stores the bytes before
  it indexes them, so a crash in between leaves such a file behind;
* leftover temporary ``*.part`` files of interrupted writes (``tmp/`` and next
  to previews);
* previews and series thumbnails whose instance or series is gone;

and, on local disk, temporary upload copies left in the spool folder.

Only things older than ``--older-than`` minutes (default 60) are touched, so a
file being ingested right now (stored, not yet indexed) is never taken.

First, though, files a DICOM association acknowledged and did not live to
index (a stale ``IngestJournal`` row, see ``imaging.ingest``) are indexed
(``recover_acknowledged``), and the folders of series with a journal row are
never searched for orphans: what is in them was answered for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from clinicnet.audit.services import audit_record
from imaging import storage
from imaging.ingest import JOURNAL_STALE_AFTER, recover_acknowledged, spool_dir
from imaging.models import IngestJournal, Instance, Series

BATCH = 1000
_FRAME = re.compile(r"^(?P<stem>.+)/frame-\d+\.jpg$")


@dataclass
class Found:
    """Keys (or spool paths) of one kind, with their sizes."""

    label: str
    items: list[tuple[str, int]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(size for _key, size in self.items)


def _size(key: str) -> int:
    try:
        return default_storage.size(key)
    except (OSError, NotImplementedError):
        return 0


def _older(key: str, cutoff: datetime) -> bool:
    try:
        return default_storage.get_modified_time(key) < cutoff
    except (OSError, NotImplementedError):
        return False


def _batched(keys: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _unreferenced(keys: Iterable[str], known: Callable[[list[str]], set[str]]) -> Iterator[str]:
    """The keys among *keys* that *known* does not return, asked in batches."""
    for batch in _batched(keys):
        referenced = known(batch)
        yield from (key for key in batch if key not in referenced)


def _instances_with_keys(keys: list[str]) -> set[str]:
    return set(Instance.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True))


def _series_with_thumbnails(keys: list[str]) -> set[str]:
    return set(Series.objects.filter(thumbnail_key__in=keys).values_list("thumbnail_key", flat=True))


def _journaled_series_folders() -> set[str]:
    """The folders of series into which an association acknowledged instances before indexing them."""
    entries = IngestJournal.objects.select_related("series__study__institution")
    return {
        storage.series_prefix(
            entry.series.study.institution.code,
            entry.series.study.study_instance_uid,
            entry.series.series_instance_uid,
        )
        for entry in entries
    }


def _preview_owner(key: str) -> str | None:
    """The instance key a frame preview belongs to (see ``storage.preview_key``)."""
    match = _FRAME.match(key.removeprefix(f"{storage.PREVIEW_PREFIX}/"))
    return f"{storage.DICOM_PREFIX}/{match['stem']}.dcm" if match else None


def find_leftovers(older_than: timedelta) -> list[Found]:
    """Everything ``cleanup_storage`` would remove, by kind."""
    cutoff = datetime.now(UTC) - older_than
    orphans = Found("DICOM files without an index row")
    journaled = _journaled_series_folders()
    dicom_keys = (
        key
        for key in storage.walk(storage.DICOM_PREFIX)
        if key.rpartition("/")[0] not in journaled and _older(key, cutoff)
    )
    for key in _unreferenced(dicom_keys, _instances_with_keys):
        orphans.items.append((key, _size(key)))

    parts = Found("unfinished temporary files (*.part)")
    for key in storage.walk(storage.TMP_PREFIX):
        if key.endswith(".part") and _older(key, cutoff):
            parts.items.append((key, _size(key)))

    previews = Found("previews and thumbnails of deleted instances and series")
    frames: dict[str, list[str]] = {}
    thumbnails: list[str] = []
    for key in storage.walk(storage.PREVIEW_PREFIX):
        if not _older(key, cutoff):
            continue
        if key.endswith(".part"):
            parts.items.append((key, _size(key)))
        elif key.endswith("/thumbnail.jpg"):
            thumbnails.append(key)
        elif (owner := _preview_owner(key)) is not None:
            frames.setdefault(owner, []).append(key)
    for owner in _unreferenced(list(frames), _instances_with_keys):
        previews.items.extend((key, _size(key)) for key in frames[owner])
    for key in _unreferenced(thumbnails, _series_with_thumbnails):
        previews.items.append((key, _size(key)))

    spool = Found("temporary upload copies in the spool folder")
    limit = time.time() - older_than.total_seconds()
    for path in sorted(Path(spool_dir()).iterdir()):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file() and stat.st_mtime < limit:
            spool.items.append((str(path), stat.st_size))
    return [orphans, parts, previews, spool]


class Command(BaseCommand):
    help = (
        "Index what the DICOM SCP answered for and did not live to index (stale journal rows), then remove "
        "stored DICOM files no index row points to (a crash between storing and indexing), "
        "leftover *.part files, previews of deleted instances and old spool files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            metavar="MINUTES",
            help="only touch files older than this (default 60), so ingests in progress are left alone",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        minutes: int = options["older_than"]
        if dry_run:
            stale = IngestJournal.objects.filter(touched_at__lt=timezone.now() - JOURNAL_STALE_AFTER).count()
            self.stdout.write(f"series with acknowledged instances to index: {stale} (indexed when not a dry run)")
        else:
            recovered = recover_acknowledged()
            self.stdout.write(f"acknowledged instances indexed after an interruption: {len(recovered)}")
            for result in recovered:
                self.stdout.write(f"  {result.name}: {result.outcome} {result.reason}".rstrip())
        found = find_leftovers(timedelta(minutes=max(minutes, 0)))
        verb = "would remove" if dry_run else "removed"
        for kind in found:
            self.stdout.write(f"{kind.label}: {len(kind.items)} ({kind.size / 1e6:,.1f} MB)")
            for key, size in kind.items:
                self.stdout.write(f"  {key} ({size:,} bytes)")
                if not dry_run:
                    if kind is found[-1]:
                        Path(key).unlink(missing_ok=True)
                    else:
                        storage.delete(key)
        total = sum(len(kind.items) for kind in found)
        size = sum(kind.size for kind in found)
        self.stdout.write(
            f"{verb} {total} files, {size / 1e6:,.1f} MB (older than {minutes} minutes)"
            + (" — dry run, nothing was removed" if dry_run else "")
        )
        if not dry_run and total:
            audit_record(
                action="storage.cleanup",
                actor_label="manage.py cleanup_storage",
                detail={kind.label: len(kind.items) for kind in found} | {"bytes": size, "older_than": minutes},
            )
