"""Batch sessions (STOW-RS, uploads): durable before one index transaction, one by one when that fails."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imaging import storage
from imaging.dicomweb.multipart import MultipartReader
from imaging.ingest import EntryPoint, IngestSession, Outcome
from imaging.models import Instance, Study
from imaging.testing import ingest_testdata, testdata_path
from institutions.models import Institution

pytestmark = pytest.mark.django_db

UID_ROOT = "1.2.826.0.1.3680043.8.498.77"


def slices(folder: Path, count: int, **changes: object) -> list[Path]:
    """*count* instances of one CT series (pydicom's CT_small.dcm with new SOP Instance UIDs), in *folder*."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(1, count + 1):
        ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
        ds.SOPInstanceUID = f"{UID_ROOT}.{number}"
        ds.InstanceNumber = number
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        path = folder / f"slice-{number}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def instance_inserts(queries: CaptureQueriesContext) -> int:
    table = Instance._meta.db_table
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("INSERT") and table in query["sql"]
    )


def test_a_batch_is_indexed_with_one_insert_per_batch(clinic: Institution, tmp_path: Path) -> None:
    paths = slices(tmp_path, 7)
    with CaptureQueriesContext(connection) as queries:
        with IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=3) as session:
            for path in paths:
                session.add_file(path)
    assert [result.outcome for result in session.results] == [Outcome.STORED] * 7
    instances = Instance.objects.order_by("instance_number")
    assert [instance.pk for instance in instances] == [result.instance_id for result in session.results]
    # The study's first instance goes the full way; the others of each batch in one INSERT: 1+1, 1, 1.
    assert instance_inserts(queries) == 4
    study = Study.objects.get()
    assert (study.number_of_instances, study.series.get().number_of_instances) == (7, 7)
    for instance, path in zip(instances, paths, strict=True):
        with storage.open_file(instance.storage_key) as handle:
            assert handle.read() == path.read_bytes()


def test_nothing_of_a_batch_is_visible_before_it_is_flushed(clinic: Institution, tmp_path: Path) -> None:
    paths = slices(tmp_path, 2)
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as session:
        for path in paths:
            session.add_file(path)
        assert not Instance.objects.exists()
        assert list(storage.walk(storage.DICOM_PREFIX)) == []  # staged under tmp/, not at their keys yet
        session.flush()
        assert Instance.objects.count() == 2
    assert sorted(storage.walk(storage.DICOM_PREFIX)) == sorted(Instance.objects.values_list("storage_key", flat=True))
    assert list(storage.walk(storage.TMP_PREFIX)) == []


def test_every_file_and_folder_is_on_disk_before_the_batch_is_indexed(clinic: Institution, tmp_path: Path) -> None:
    paths = slices(tmp_path, 3)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real_fsync, real_index_batch = storage._fsync, IngestSession._index_batch

    def fsync(path: Path) -> None:
        real_fsync(path)
        with lock:
            events.append(("fsync", str(path)))

    def index_batch(self: IngestSession, staged: list) -> list:
        with lock:
            events.append(("index", ""))
        return real_index_batch(self, staged)

    with (
        mock.patch("imaging.storage._fsync", side_effect=fsync),
        mock.patch.object(IngestSession, "_index_batch", index_batch),
        IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as session,
    ):
        for path in paths:
            session.add_file(path)
    assert [result.outcome for result in session.results] == [Outcome.STORED] * 3
    index_at = events.index(("index", ""))
    synced = [path for kind, path in events[:index_at] if kind == "fsync"]
    assert len([path for path in synced if path.endswith(".part")]) == 3  # each file's bytes
    root = storage._local_root()
    assert root is not None
    series_folder = str((root / Instance.objects.order_by("pk")[0].storage_key).parent)
    assert series_folder in synced  # the renames into it
    assert all(kind != "fsync" for kind, _path in events[index_at:])


def test_a_disk_failure_rejects_the_batch_and_leaves_nothing(clinic: Institution, tmp_path: Path) -> None:
    paths = slices(tmp_path, 3)
    with (
        mock.patch("imaging.storage._fsync", side_effect=OSError(5, "Input/output error")),
        IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as session,
    ):
        for path in paths:
            session.add_file(path)
    assert [result.outcome for result in session.results] == [Outcome.REJECTED] * 3
    assert "could not store the file (Input/output error)" in session.results[0].reason
    assert not Instance.objects.exists()
    assert list(storage.walk(storage.DICOM_PREFIX)) == []
    assert list(storage.walk(storage.TMP_PREFIX)) == []


@pytest.mark.django_db(
    transaction=True
)  # autocommit, as in production: the failed INSERT must not poison a test transaction
@pytest.mark.parametrize("same_bytes", [True, False])
def test_a_concurrent_insert_ends_as_duplicate_or_conflict_and_the_rest_goes_in(
    clinic: Institution, tmp_path: Path, same_bytes: bool
) -> None:
    """Another upload indexes one of the batch's SOP Instance UIDs while the batch is being made durable."""
    paths = slices(tmp_path, 4)
    rival = paths[1] if same_bytes else slices(tmp_path / "rival", 2, PatientName="Rival^Upload")[1]
    if not same_bytes:
        assert hashlib.sha256(rival.read_bytes()).digest() != hashlib.sha256(paths[1].read_bytes()).digest()
    real_commit = storage.DurableBatch.commit
    rival_result: list = []

    def commit(self: storage.DurableBatch) -> None:
        with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as other:
            rival_result.append(other.add_file(rival))
        real_commit(self)

    with (
        mock.patch.object(storage.DurableBatch, "commit", commit),
        IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as session,
    ):
        for path in paths:
            session.add_file(path)
    assert rival_result[0].outcome == Outcome.STORED
    outcomes = [result.outcome for result in session.results]
    expected = Outcome.DUPLICATE if same_bytes else Outcome.CONFLICT
    assert outcomes == [Outcome.STORED, expected, Outcome.STORED, Outcome.STORED]
    assert session.results[1].instance_id == rival_result[0].instance_id
    assert Instance.objects.count() == 4
    # The rival's file is intact at its key; the batch's copy of a conflicting file is gone.
    keys = set(Instance.objects.values_list("storage_key", flat=True))
    assert set(storage.walk(storage.DICOM_PREFIX)) == keys
    rival_instance = Instance.objects.get(pk=rival_result[0].instance_id)
    with storage.open_file(rival_instance.storage_key) as handle:
        assert handle.read() == rival.read_bytes()
    assert Study.objects.get().number_of_instances == 4


def test_a_resent_batch_is_all_duplicates_and_puts_nothing_in_place(clinic: Institution, tmp_path: Path) -> None:
    paths = slices(tmp_path, 3)
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as first:
        for path in paths:
            first.add_file(path)
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as again:
        for path in paths:
            again.add_file(path)
    assert [result.outcome for result in again.results] == [Outcome.DUPLICATE] * 3
    assert [result.instance_id for result in again.results] == [result.instance_id for result in first.results]
    assert Instance.objects.count() == 3
    assert list(storage.walk(storage.TMP_PREFIX)) == []


def test_the_same_instance_twice_in_a_batch_is_judged_as_one_by_one(clinic: Institution, tmp_path: Path) -> None:
    (path,) = slices(tmp_path, 1)
    (other,) = slices(tmp_path / "other", 1, PatientName="Other^Bytes")
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as session:
        session.add_file(path)
        session.add_file(path)
        session.add_file(other)
    assert [result.outcome for result in session.results] == [Outcome.STORED, Outcome.DUPLICATE, Outcome.CONFLICT]
    assert Instance.objects.count() == 1


def test_a_study_of_another_patient_in_a_batch_is_a_conflict_and_the_rest_goes_in(
    clinic: Institution, tmp_path: Path
) -> None:
    ingest_testdata(clinic, "CT_small.dcm")  # files the study under patient 1CT1
    paths = slices(tmp_path, 3)
    (moved,) = slices(tmp_path / "moved", 1, PatientID="SOMEONE-ELSE", SOPInstanceUID=f"{UID_ROOT}.99")
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB, batch_size=50) as session:
        session.add_file(paths[0])
        session.add_file(moved)
        session.add_file(paths[1])
    assert [result.outcome for result in session.results] == [Outcome.STORED, Outcome.CONFLICT, Outcome.STORED]
    assert "already filed under another patient ID (1CT1)" in session.results[1].reason
    assert Instance.objects.count() == 3
    assert set(storage.walk(storage.DICOM_PREFIX)) == set(Instance.objects.values_list("storage_key", flat=True))


def test_multipart_parts_are_hashed_as_they_are_spooled(tmp_path: Path) -> None:
    contents = [b"first part " * 1000, testdata_path("CT_small.dcm").read_bytes()]
    body = b"".join(b"--b\r\nContent-Type: application/dicom\r\n\r\n" + content + b"\r\n" for content in contents)
    reader = MultipartReader(io.BytesIO(body + b"--b--\r\n"), "b", str(tmp_path), chunk_size=4096)
    hashes = [(part.sha256, hashlib.sha256(part.path.read_bytes()).hexdigest()) for part in reader]
    assert hashes == [(hashlib.sha256(content).hexdigest(),) * 2 for content in contents]


def test_bytes_are_hashed_from_memory(clinic: Institution) -> None:
    data = testdata_path("CT_small.dcm").read_bytes()
    with (
        mock.patch("imaging.storage.sha256_of", side_effect=AssertionError("read back")),
        IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session,
    ):
        result = session.add_bytes(data)
    assert result.outcome == Outcome.STORED
    assert Instance.objects.get().sha256 == hashlib.sha256(data).hexdigest()
