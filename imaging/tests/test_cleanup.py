"""``manage.py cleanup_storage``: what a crash or a deletion leaves behind is found and removed."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from clinicnet.audit.models import AuditEvent
from imaging import storage
from imaging.ingest import spool_dir
from imaging.models import IngestJournal, Instance, Series
from imaging.testing import make_study, testdata_path
from institutions.models import Institution

pytestmark = pytest.mark.django_db
TWO_HOURS_AGO = time.time() - 2 * 3600


def local(key: str) -> Path:
    return Path(default_storage.path(key))


def age(*paths: Path) -> None:
    for path in paths:
        os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO))


def cleanup(*args: str) -> str:
    out = io.StringIO()
    call_command("cleanup_storage", *args, stdout=out)
    return out.getvalue()


def crash_between_storing_and_indexing(clinic: Institution) -> str:
    """Store a file the way the ingest does, and stop before the index row is written."""
    key = storage.dicom_key(clinic.code, "1.2.3", "1.2.3.4", "1.2.3.4.5", "ab" * 32)
    storage.store_file(key, testdata_path("MR_small.dcm"))
    return key


def test_a_file_stored_without_an_index_row_is_found_and_removed(clinic: Institution) -> None:
    kept = make_study(clinic).instances.get().storage_key
    orphan = crash_between_storing_and_indexing(clinic)
    age(local(orphan), local(kept))
    assert local(orphan).exists()
    out = cleanup()
    size = testdata_path("MR_small.dcm").stat().st_size
    assert f"DICOM files without an index row: 1 ({size / 1e6:,.1f} MB)" in out
    assert f"  {orphan} ({size:,} bytes)" in out
    assert f"  {orphan} (" in out
    assert not local(orphan).exists()
    assert local(kept).exists()
    assert kept not in out
    event = AuditEvent.objects.get(action="storage.cleanup")
    assert event.detail["DICOM files without an index row"] == 1


def test_a_dry_run_lists_but_keeps_everything(clinic: Institution) -> None:
    orphan = crash_between_storing_and_indexing(clinic)
    age(local(orphan))
    out = cleanup("--dry-run")
    assert f"  {orphan} (" in out
    assert "would remove 1 files" in out and "dry run, nothing was removed" in out
    assert local(orphan).exists()
    assert not AuditEvent.objects.filter(action="storage.cleanup").exists()


def test_recent_files_are_left_alone_so_ingests_in_progress_are_safe(clinic: Institution) -> None:
    orphan = crash_between_storing_and_indexing(clinic)
    assert orphan not in cleanup()
    assert local(orphan).exists()
    # (Files other tests of this run left behind may be listed too: the storage folder is shared.)
    assert f"  {orphan} (" in cleanup("--older-than", "0")
    assert not local(orphan).exists()


def test_leftover_part_files_and_spool_copies_are_removed(clinic: Institution) -> None:
    part = local(f"{storage.TMP_PREFIX}/0123abcd.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half a file")
    preview_part = local(f"{storage.PREVIEW_PREFIX}/{clinic.code}/x/.frame-00001.jpg.0123.part")
    preview_part.parent.mkdir(parents=True, exist_ok=True)
    preview_part.write_bytes(b"half a preview")
    spooled = Path(spool_dir()) / "tmpupload.upload"
    spooled.write_bytes(b"an upload from yesterday")
    fresh = Path(spool_dir()) / "tmpnow.upload"
    fresh.write_bytes(b"an upload in progress")
    age(part, preview_part, spooled)
    out = cleanup()
    assert "unfinished temporary files (*.part): 2" in out
    assert "temporary upload copies in the spool folder: 1" in out
    assert not part.exists() and not preview_part.exists() and not spooled.exists()
    assert fresh.exists()
    fresh.unlink()


def test_previews_of_deleted_instances_and_series_go_with_them(clinic: Institution) -> None:
    gone = make_study(clinic, "CT_small.dcm")
    stays = make_study(clinic, "MR_small.dcm")
    gone_instance = gone.instances.get()
    gone_series = gone.series.get()
    gone_preview = local(storage.preview_key(gone_instance.storage_key, 0))
    gone_thumbnail = local(gone_series.thumbnail_key)
    kept_preview = local(storage.preview_key(stays.instances.get().storage_key, 0))
    kept_thumbnail = local(stays.series.get().thumbnail_key)
    for path in (gone_preview, gone_thumbnail, kept_preview, kept_thumbnail, local(gone_instance.storage_key)):
        assert path.exists()
        age(path)
    Instance.objects.filter(pk=gone_instance.pk).delete()
    Series.objects.filter(pk=gone_series.pk).delete()
    out = cleanup()
    assert "previews and thumbnails of deleted instances and series: 2" in out
    assert "DICOM files without an index row: 1" in out
    assert not gone_preview.exists() and not gone_thumbnail.exists()
    assert not local(gone_instance.storage_key).exists()
    assert kept_preview.exists() and kept_thumbnail.exists()


def acknowledged_but_not_indexed(clinic: Institution, tmp_path: Path) -> tuple[Instance, str]:
    """A series with one indexed instance and one an association answered for and did not live to index."""
    instance = make_study(clinic).instances.get()
    second = pydicom.dcmread(testdata_path("CT_small.dcm"))
    second.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.99"
    path = tmp_path / "second.dcm"
    second.save_as(path)
    key = storage.dicom_key(
        clinic.code, second.StudyInstanceUID, second.SeriesInstanceUID, second.SOPInstanceUID, storage.sha256_of(path)
    )
    storage.store_file(key, path)
    IngestJournal.objects.create(series_id=instance.series_id, touched_at=timezone.now())
    age(local(key), local(instance.storage_key))
    return instance, key


def test_files_of_a_journaled_series_are_never_taken_for_orphans(clinic: Institution, tmp_path: Path) -> None:
    _instance, key = acknowledged_but_not_indexed(clinic, tmp_path)
    out = cleanup("--older-than", "0")
    assert "DICOM files without an index row: 0" in out
    assert "acknowledged instances indexed after an interruption: 0" in out  # its session may still be alive
    assert local(key).exists()
    assert not Instance.objects.filter(storage_key=key).exists()


def test_what_a_stale_journal_names_is_indexed_where_it_lies(clinic: Institution, tmp_path: Path) -> None:
    instance, key = acknowledged_but_not_indexed(clinic, tmp_path)
    IngestJournal.objects.update(touched_at=timezone.now() - timedelta(hours=1))
    assert "series with acknowledged instances to index: 1" in cleanup("--dry-run")
    assert not Instance.objects.filter(storage_key=key).exists()
    out = cleanup()
    assert "acknowledged instances indexed after an interruption: 1" in out
    assert f"  {key}: stored" in out
    recovered = Instance.objects.get(storage_key=key)
    assert recovered.series_id == instance.series_id
    assert recovered.study.number_of_instances == 2
    assert local(key).exists() and not IngestJournal.objects.exists()
    assert "DICOM files without an index row: 0" in out


@pytest.mark.django_db(transaction=True)  # the command closes its database connections after each look
def test_the_scp_indexes_what_a_stale_journal_names(clinic: Institution, tmp_path: Path) -> None:
    from imaging.management.commands.dicom_scp import Command

    _instance, key = acknowledged_but_not_indexed(clinic, tmp_path)
    out = io.StringIO()
    command = Command(stdout=out)
    command.recover()
    assert out.getvalue() == ""  # fresh: its session may still be alive
    IngestJournal.objects.update(touched_at=timezone.now() - timedelta(minutes=3))
    command.recover()
    assert "indexed 1 instances acknowledged before an interruption" in out.getvalue()
    assert Instance.objects.filter(storage_key=key).exists()
