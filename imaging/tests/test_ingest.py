"""The one ingest path: validation, storage, index, duplicates, conflicts, atomicity."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from clinicnet.audit.models import AuditEvent
from imaging import storage
from imaging.dicom.header import parse_header
from imaging.ingest import EntryPoint, IngestSession, Outcome, spool_dir
from imaging.models import Instance, Patient, Series, Study
from imaging.testing import ingest_testdata, testdata_path
from imaging.tests.conftest import wait_until
from institutions.models import Institution, User
from institutions.testing import make_institution

pytestmark = pytest.mark.django_db


def modified_copy(tmp_path: Path, name: str, **changes: object) -> Path:
    ds = pydicom.dcmread(testdata_path(name))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    target = tmp_path / f"modified-{name}"
    ds.save_as(target)
    return target


def test_a_file_is_stored_byte_exact_and_indexed(clinic: Institution, doctor: User) -> None:
    (result,) = ingest_testdata(clinic, "CT_small.dcm", actor=doctor, entry_point=EntryPoint.WEB)
    assert result.outcome == Outcome.STORED
    instance = Instance.objects.get()
    original = testdata_path("CT_small.dcm").read_bytes()
    with default_storage.open(instance.storage_key) as handle:
        assert handle.read() == original
    assert instance.size == len(original)
    assert instance.sha256 == storage.sha256_of(testdata_path("CT_small.dcm"))
    assert instance.sop_instance_uid == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    assert instance.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert instance.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert (instance.rows, instance.columns, instance.number_of_frames) == (128, 128, 1)
    # DICOM JSON metadata, with the pixel data as a reference, not inline.
    assert instance.metadata["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert instance.metadata["7FE00010"]["BulkDataURI"].endswith(
        f"/instances/{instance.sop_instance_uid}/bulkdata/7FE00010"
    )
    # Only small binary values are inline (base64 of at most 1 KiB).
    assert all(len(v.get("InlineBinary", "")) <= 1368 for v in instance.metadata.values())
    study = instance.study
    assert (study.institution, study.number_of_series, study.number_of_instances, study.modalities) == (
        clinic,
        1,
        1,
        "CT",
    )
    assert study.patient.patient_id == "1CT1"
    assert study.uploaded_by == doctor
    event = AuditEvent.objects.get(action="study.store")
    assert event.actor == doctor
    assert event.object_id == study.study_instance_uid
    assert event.detail == {"entry_point": "web", "stored": 1}


def test_korean_names_are_decoded_with_the_files_character_set(clinic: Institution) -> None:
    (result,) = ingest_testdata(clinic, "chrKoreanMulti.dcm")
    assert result.ok
    patient = Patient.objects.get()
    assert patient.name == "김희중"
    assert patient.display_name == "김희중"
    instance = Instance.objects.get()
    assert instance.metadata["00100010"]["Value"] == [{"Alphabetic": "김희중"}]
    assert instance.metadata["00081070"]["Value"] == [{"Alphabetic": "김희중"}]
    assert instance.metadata["001021B0"]["Value"] == ["김희중"]


def test_the_same_file_again_is_a_duplicate_and_nothing_is_added(clinic: Institution) -> None:
    ingest_testdata(clinic, "MR_small.dcm")
    (again,) = ingest_testdata(clinic, "MR_small.dcm")
    assert again.outcome == Outcome.DUPLICATE
    assert again.ok
    assert Instance.objects.count() == 1
    study = Study.objects.get()
    assert study.number_of_instances == 1
    instance = Instance.objects.get()
    assert sorted(storage.walk("dicom")) == [instance.storage_key]
    with storage.local_path(instance.storage_key) as path:
        assert path.read_bytes() == testdata_path("MR_small.dcm").read_bytes()


def test_other_bytes_under_a_stored_sop_instance_uid_are_a_conflict(clinic: Institution, tmp_path: Path) -> None:
    ingest_testdata(clinic, "CT_small.dcm")
    stored = Instance.objects.get()
    changed = modified_copy(tmp_path, "CT_small.dcm", StudyDescription="changed")
    with IngestSession(institution=clinic, entry_point=EntryPoint.API) as session:
        result = session.add_file(changed)
    assert result.outcome == Outcome.CONFLICT
    assert "already stored with different contents" in result.reason
    assert Instance.objects.get() == stored
    assert sorted(storage.walk("dicom")) == [stored.storage_key]


def test_the_same_uids_at_two_clinics_are_two_patients_and_two_studies(
    clinic: Institution, other_clinic: Institution
) -> None:
    ingest_testdata(clinic, "CT_small.dcm")
    (result,) = ingest_testdata(other_clinic, "CT_small.dcm")
    # The other clinic cannot learn that the first one holds this study.
    assert result.outcome == Outcome.STORED
    assert Patient.objects.count() == 2
    assert Study.objects.filter(study_instance_uid=result.study_instance_uid).count() == 2


def test_instances_of_a_study_share_patient_study_and_series(clinic: Institution) -> None:
    results = ingest_testdata(clinic, "MR2_UNCR.dcm", "MR_small.dcm")
    assert all(result.ok for result in results)
    assert Study.objects.count() == 2
    study = Study.objects.get(study_instance_uid=results[0].study_instance_uid)
    assert Series.objects.filter(study=study).count() == 1


def test_a_study_already_filed_under_another_patient_is_a_conflict(clinic: Institution, tmp_path: Path) -> None:
    ingest_testdata(clinic, "CT_small.dcm")
    other = modified_copy(
        tmp_path, "CT_small.dcm", PatientID="SOMEONE-ELSE", SOPInstanceUID="1.2.826.0.1.3680043.8.498.1"
    )
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        result = session.add_file(other)
    assert result.outcome == Outcome.CONFLICT
    assert "already filed under another patient ID (1CT1)" in result.reason
    assert Instance.objects.count() == 1
    assert list(storage.walk("dicom")) == [Instance.objects.get().storage_key]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda tmp: tmp.joinpath("notes.txt").write_bytes(b"hello, this is not DICOM") and tmp / "notes.txt",
            "not a DICOM file",
        ),
        (lambda tmp: tmp.joinpath("empty.dcm").write_bytes(b"") or tmp / "empty.dcm", "the file is empty"),
        (
            lambda tmp: (
                tmp.joinpath("cut.dcm").write_bytes(testdata_path("CT_small.dcm").read_bytes()[:20000])
                and tmp / "cut.dcm"
            ),
            "the file is truncated",
        ),
        (lambda tmp: modified_copy(tmp, "CT_small.dcm", StudyInstanceUID=None), "missing Study Instance UID"),
        (lambda tmp: modified_copy(tmp, "CT_small.dcm", SeriesInstanceUID=None), "missing Series Instance UID"),
        (lambda tmp: modified_copy(tmp, "CT_small.dcm", SOPInstanceUID="not-a-uid"), "is not a valid DICOM UID"),
    ],
)
def test_bad_files_are_rejected_with_a_reason_and_leave_nothing(
    clinic: Institution, tmp_path: Path, make: object, reason: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        result = session.add_file(path)
        good = session.add_file(testdata_path("MR_small.dcm"))
    assert result.outcome == Outcome.REJECTED
    assert reason in result.reason
    # The rest of the batch still goes in.
    assert good.outcome == Outcome.STORED
    assert Instance.objects.count() == 1
    assert len(list(storage.walk("dicom"))) == 1
    assert AuditEvent.objects.filter(action="study.store_rejected", detail__rejected=1).exists()


@override_settings(DICOM_MAX_FILE_BYTES=10_000)
def test_a_file_over_the_size_limit_is_rejected(clinic: Institution) -> None:
    (result,) = ingest_testdata(clinic, "CT_small.dcm")
    assert result.outcome == Outcome.REJECTED
    assert "over the limit of 10000 bytes per file" in result.reason
    assert not Instance.objects.exists()


def test_a_dicomdir_is_skipped_not_rejected(clinic: Institution) -> None:
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        result = session.add_file(testdata_path("DICOMDIR"))
    assert result.outcome == Outcome.SKIPPED
    assert "DICOMDIR" in result.reason


def test_a_failure_between_storing_and_indexing_leaves_nothing(clinic: Institution) -> None:
    with (
        mock.patch.object(IngestSession, "_index", side_effect=RuntimeError("database went away")),
        pytest.raises(RuntimeError),
        IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session,
    ):
        session.add_file(testdata_path("CT_small.dcm"))
    assert not Instance.objects.exists()
    assert not Study.objects.exists()
    # The stored bytes were removed again.
    assert list(storage.walk("dicom")) == []


def test_a_failed_index_transaction_rolls_back_every_row(clinic: Institution) -> None:
    with (
        mock.patch("imaging.ingest._insert_unless_indexed", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
        IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session,
    ):
        session.add_file(testdata_path("CT_small.dcm"))
    assert not Patient.objects.exists()
    assert not Study.objects.exists()
    assert not Series.objects.exists()


def test_a_storage_failure_is_a_clear_rejection(clinic: Institution) -> None:
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session:
        with mock.patch("imaging.storage.store_file", side_effect=OSError(28, "No space left on device")):
            result = session.add_file(testdata_path("CT_small.dcm"))
        assert result.outcome == Outcome.REJECTED
        assert "could not store the file (No space left on device)" in result.reason
        # The rows written before storing were rolled back with it, and the session knows.
        assert not Instance.objects.exists()
        assert not Study.objects.exists()
        assert not Patient.objects.exists()
        assert session.add_file(testdata_path("CT_small.dcm")).outcome == Outcome.STORED
    assert Study.objects.get().number_of_instances == 1


def test_bytes_can_be_ingested_directly(clinic: Institution) -> None:
    data = testdata_path("CT_small.dcm").read_bytes()
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE, actor_label="AE MODALITY") as session:
        result = session.add_bytes(data, name="from-the-network")
    assert result.outcome == Outcome.STORED
    event = AuditEvent.objects.get(action="study.store")
    assert (event.actor_label, event.detail["entry_point"]) == ("AE MODALITY", "dimse")


def test_bytes_in_pieces_are_stored_as_one_file_and_the_pieces_are_free_again(clinic: Institution) -> None:
    data = testdata_path("CT_small.dcm").read_bytes()
    head, body = bytearray(data[:300]), io.BytesIO(data[300:])
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session:
        with body.getbuffer() as view:
            result = session.add_bytes((bytes(head), view))
        # Rejected early (no hash awaited on the way): the buffer must still be released.
        with body.getbuffer() as view:
            broken = session.add_bytes((b"not DICOM at all", view[:100]))
    body.write(b"the buffer is no longer exported")
    assert result.outcome == Outcome.STORED
    assert broken.outcome == Outcome.REJECTED
    with storage.local_path(Instance.objects.get().storage_key) as path:
        assert path.read_bytes() == data


def test_the_spool_file_made_ahead_is_removed_when_the_session_closes(clinic: Institution) -> None:
    spool = Path(spool_dir())
    before = set(spool.iterdir())
    data = testdata_path("CT_small.dcm").read_bytes()
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session:
        session.add_bytes(data)
        session.add_bytes(data)  # from the second on, the next file is made while this one is used
        made_ahead = session._spool is not None and session._spool._next is not None
    assert made_ahead
    assert [result.outcome for result in session.results] == [Outcome.STORED, Outcome.DUPLICATE]
    # The used ones are removed in the background.
    wait_until(lambda: set(spool.iterdir()) == before, 10, lambda: set(spool.iterdir()) - before)


@pytest.mark.parametrize("join_up_to", [1024 * 1024, 1000], ids=["joined-and-parsed-from-memory", "parsed-from-disk"])
def test_a_file_in_pieces_is_stored_whole_whether_or_not_they_are_joined(
    clinic: Institution, monkeypatch, join_up_to: int
) -> None:
    monkeypatch.setattr("imaging.ingest.JOIN_UP_TO_BYTES", join_up_to)  # CT_small.dcm is 39 KB
    parsed = []
    monkeypatch.setattr("imaging.ingest.parse_header", lambda source: parsed.append(source) or parse_header(source))
    data = testdata_path("CT_small.dcm").read_bytes()
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session:
        result = session.add_bytes([data[:128], memoryview(data)[128:20000], memoryview(data)[20000:]])
    assert result.outcome == Outcome.STORED
    assert isinstance(parsed[0], bytes) == (join_up_to > len(data))
    with storage.local_path(Instance.objects.get().storage_key) as path:
        assert path.read_bytes() == data


def test_a_file_read_for_its_header_is_hashed_from_memory_not_read_again(clinic: Institution) -> None:
    path = testdata_path("CT_small.dcm")
    with (
        mock.patch("imaging.storage.sha256_of", wraps=storage.sha256_of) as read_to_hash,
        IngestSession(institution=clinic, entry_point=EntryPoint.IMPORT) as session,
    ):
        assert session.add_file(path).outcome == Outcome.STORED
    assert read_to_hash.call_count == 0
    assert Instance.objects.get().sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_real_test_file_with_pixels_is_indexed_and_previewed(pixel_files: list[Path]) -> None:
    """Each of pydicom's files with pixel data: right UIDs, byte-exact, and a checked preview or a reason."""
    health_center = make_institution(kind=Institution.Kind.HEALTH_CENTER)
    previews = 0
    for path in pixel_files:
        # One clinic per file: several of pydicom's files share SOP Instance UIDs.
        clinic = make_institution(health_center=health_center)
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        with IngestSession(institution=clinic, entry_point=EntryPoint.IMPORT) as session:
            result = session.add_file(path)
        assert result.outcome == Outcome.STORED, (path.name, result.reason)
        instance = Instance.objects.select_related("study", "series").get(pk=result.instance_id)
        assert instance.sop_instance_uid == ds.SOPInstanceUID
        assert instance.study.study_instance_uid == ds.StudyInstanceUID
        assert instance.series.series_instance_uid == ds.SeriesInstanceUID
        assert instance.number_of_frames >= 1
        with default_storage.open(instance.storage_key) as handle:
            assert handle.read() == path.read_bytes(), path.name
        # Previews were rendered (eagerly in tests) or a reason says why not.
        assert instance.preview_status in ("ready", "failed"), (path.name, instance.preview_status)
        assert instance.study.status in ("ready", "failed")
        if instance.preview_status == "failed":
            assert instance.preview_error.startswith("no preview: "), path.name
            assert len(instance.preview_error) > len("no preview: ") + 5
            continue
        previews += 1
        check_preview(instance, ds, path)
    assert previews >= len(pixel_files) - 10


# Scans of a nearly white page and tiny crops whose every pixel lies outside
# the file's own window render uniform on purpose.
UNIFORM_BY_DESIGN = {
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
}


def check_preview(instance: Instance, ds: pydicom.Dataset, path: Path) -> None:
    import numpy as np
    from PIL import Image

    with default_storage.open(storage.preview_key(instance.storage_key, 0)) as handle:
        image = Image.open(handle)
        image.load()
    rows, columns = int(ds.Rows), int(ds.Columns)
    # Fitted into the 512-pixel box, aspect ratio kept.
    assert max(image.size) == 512, (path.name, image.size)
    assert abs(image.size[0] / image.size[1] - columns / rows) < 0.02, (path.name, image.size, columns, rows)
    pixels = np.asarray(image.convert("L"), dtype=np.float32)
    if path.name not in UNIFORM_BY_DESIGN and min(rows, columns) > 16:
        assert pixels.max() - pixels.min() >= 8, f"{path.name} preview is blank"
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        # Inverted: where the stored values are high the preview is dark.
        full = pydicom.dcmread(path)
        stored = np.asarray(
            Image.fromarray(full.pixel_array.astype(np.float32)).resize(image.size, Image.Resampling.BILINEAR)
        )
        correlation = np.corrcoef(stored.ravel(), pixels.ravel())[0, 1]
        assert correlation < -0.5, (path.name, correlation)
    frames = instance.number_of_frames
    if frames > 1:
        last = min(frames, 200) - 1
        assert default_storage.exists(storage.preview_key(instance.storage_key, last)), path.name
    assert instance.series.thumbnail_key
    assert default_storage.exists(instance.series.thumbnail_key)


def test_bulk_data_of_private_binary_elements_is_referenced(clinic: Institution, tmp_path: Path) -> None:
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    block = ds.private_block(0x0011, "CLINICNET TEST", create=True)
    block.add_new(0x01, "OB", b"\x01" * 5000)
    tag = f"{block.get_tag(0x01):08X}"
    path = tmp_path / "private.dcm"
    ds.save_as(path)
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        assert session.add_file(path).ok
    element = Instance.objects.get().metadata[tag]
    assert element["vr"] == "OB"
    assert element["BulkDataURI"].endswith(f"/bulkdata/{tag}")


def test_a_nested_sequence_bulk_reference_names_its_path(clinic: Institution, tmp_path: Path) -> None:
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    item = pydicom.Dataset()
    item.add_new(0x00091001, "OB", b"\x02" * 4000)
    ds.add_new(0x00540016, "SQ", pydicom.Sequence([item]))
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        assert session.add_bytes(buffer.getvalue()).ok
    nested = Instance.objects.get().metadata["00540016"]["Value"][0]["00091001"]
    assert nested["BulkDataURI"].endswith("/bulkdata/00540016/0/00091001")


# --- Speed-ups of the ingest path (bench/README.md, "Ingest") --------------------------------


def test_later_instances_of_a_study_in_a_session_skip_the_lookups(clinic: Institution, tmp_path: Path) -> None:
    first = modified_copy(tmp_path, "CT_small.dcm")
    second = tmp_path / "second.dcm"
    ds = pydicom.dcmread(first)
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.InstanceNumber = 2
    ds.save_as(second)
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session:
        assert session.add_file(first).outcome == Outcome.STORED
        # One INSERT (in its transaction), which also finds a resend; the counters are set when the session closes.
        with CaptureQueriesContext(connection) as queries:
            assert session.add_file(second).outcome == Outcome.STORED
        statements = [query["sql"].split()[0].upper() for query in queries.captured_queries]
        assert [statement for statement in statements if statement not in ("SAVEPOINT", "RELEASE")] == ["INSERT"]
        assert Study.objects.get().number_of_instances == 1  # not yet: counted when the session closes
    study = Study.objects.get()
    assert (study.number_of_instances, study.number_of_series, study.modalities) == (2, 1, "CT")
    assert Series.objects.get().number_of_instances == 2
    assert Patient.objects.count() == 1


def test_a_session_still_sees_a_study_filed_under_another_patient(clinic: Institution, tmp_path: Path) -> None:
    other = modified_copy(
        tmp_path, "CT_small.dcm", PatientID="SOMEONE-ELSE", SOPInstanceUID="1.2.826.0.1.3680043.8.498.1"
    )
    new_modality = modified_copy(tmp_path, "MR_small.dcm")
    ds = pydicom.dcmread(new_modality)
    ds.StudyInstanceUID = pydicom.dcmread(testdata_path("CT_small.dcm")).StudyInstanceUID
    ds.PatientID = pydicom.dcmread(testdata_path("CT_small.dcm")).PatientID
    ds.save_as(new_modality)
    with IngestSession(institution=clinic, entry_point=EntryPoint.DIMSE) as session:
        assert session.add_file(testdata_path("CT_small.dcm")).outcome == Outcome.STORED
        assert session.add_file(other).outcome == Outcome.CONFLICT
        assert session.add_file(new_modality).outcome == Outcome.STORED
    study = Study.objects.get()
    assert (study.number_of_instances, study.number_of_series, study.modalities) == (2, 2, "CT\\MR")


def test_spooled_files_are_linked_into_storage_and_other_files_copied(clinic: Institution, tmp_path: Path) -> None:
    from imaging.ingest import spool_dir

    spooled = Path(spool_dir()) / "bench-link-test.dcm"
    spooled.write_bytes(testdata_path("CT_small.dcm").read_bytes())
    outside = tmp_path / "MR_small.dcm"
    outside.write_bytes(testdata_path("MR_small.dcm").read_bytes())
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        linked, copied = session.add_file(spooled), session.add_file(outside)
    linked_path = Path(default_storage.path(Instance.objects.get(pk=linked.instance_id).storage_key))
    copied_path = Path(default_storage.path(Instance.objects.get(pk=copied.instance_id).storage_key))
    assert linked_path.stat().st_ino == spooled.stat().st_ino  # the spool's bytes, not written twice
    assert copied_path.stat().st_ino != outside.stat().st_ino  # a user's file can change later: copied
    spooled.unlink()  # the spool copy goes; the archive keeps its link
    assert linked_path.read_bytes() == testdata_path("CT_small.dcm").read_bytes()
    assert list(storage.walk(storage.TMP_PREFIX)) == []


def test_many_pieces_are_written_in_order_past_the_systems_limit_per_call(tmp_path: Path) -> None:
    from imaging.ingest import _write_all

    pieces = [bytes([n % 251]) * (n % 7) for n in range(3000)]  # more than IOV_MAX, some empty
    target = tmp_path / "joined"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        _write_all(fd, [memoryview(piece) for piece in pieces])
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(pieces)


def test_on_object_storage_a_resend_is_not_uploaded_again(clinic: Institution) -> None:
    # One by one, a resend is found by its INSERT, after storing: its key (content hash
    # included) exists already, and an object store must neither upload it again nor,
    # as Django storages do for a taken name, keep a second copy under another name.
    from django.core.files.storage import InMemoryStorage

    remote = InMemoryStorage()
    with (
        mock.patch.object(storage, "default_storage", remote),
        mock.patch.object(remote, "save", wraps=remote.save) as uploads,
    ):
        session = IngestSession(institution=clinic, entry_point=EntryPoint.IMPORT)
        first = session.add_file(testdata_path("CT_small.dcm"))
        again = session.add_file(testdata_path("CT_small.dcm"))
    assert (first.outcome, again.outcome) == (Outcome.STORED, Outcome.DUPLICATE)
    assert uploads.call_count == 1
    key = Instance.objects.get().storage_key
    assert remote.listdir(str(Path(key).parent)) == ([], [Path(key).name])
