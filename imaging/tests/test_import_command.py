"""``manage.py import_dicom``: folders, zips and files in bulk, with a progress line and a summary."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.core.management import CommandError, call_command

from imaging.models import Instance
from imaging.testing import testdata_path
from imaging.tests.conftest import PIXEL_TESTDATA
from institutions.models import Institution

pytestmark = pytest.mark.django_db


def import_dicom(*args: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_dicom", *[str(a) for a in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def outcomes_of(summary: str) -> dict[str, str]:
    """``{name: outcome}`` of the failed and skipped files listed in the summary."""
    listed = {}
    for line in summary.splitlines():
        if line.startswith("  ") and ": " in line and not line.startswith("  stored "):
            name, outcome, _reason = line.strip().split(": ", 2)
            listed[name] = outcome
    return listed


def test_every_real_file_with_pixel_data_is_imported_or_refused_with_a_reason(clinic: Institution) -> None:
    out, _err = import_dicom(*PIXEL_TESTDATA, "--institution", clinic.code, "--no-progress", "--allow-failures")
    first = out.splitlines()[0]
    assert first.startswith(f"{len(PIXEL_TESTDATA)} files, ")
    failed = outcomes_of(out)
    for line in out.splitlines()[2:]:
        if line.startswith("  "):
            assert line.split(": ", 2)[2].strip(), f"no reason given: {line}"
    stored = {i.sop_instance_uid: i for i in Instance.objects.filter(institution=clinic).select_related("study")}
    for path in PIXEL_TESTDATA:
        if str(path) in failed:
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        instance = stored[ds.SOPInstanceUID]  # stored now, or already (a duplicate)
        assert instance.study.study_instance_uid == ds.StudyInstanceUID
        assert instance.sop_class_uid == ds.SOPClassUID
    # Previews ran (eagerly, in tests) for everything stored: a preview or the reason why not.
    for instance in stored.values():
        assert instance.preview_status in {Instance.PreviewStatus.READY, "none", "failed"}, instance
        if instance.preview_status != Instance.PreviewStatus.READY:
            assert instance.preview_error.startswith("no preview: "), instance
    assert sum(i.preview_status == Instance.PreviewStatus.READY for i in stored.values()) > 0.8 * len(stored)


def test_a_folder_a_zip_and_a_file_in_one_run_with_a_summary(tmp_path: Path, clinic: Institution) -> None:
    folder = tmp_path / "CD"
    (folder / "DICOM").mkdir(parents=True)
    (folder / "DICOMDIR").write_bytes(testdata_path("DICOMDIR").read_bytes())
    (folder / "DICOM" / "IM0001").write_bytes(testdata_path("CT_small.dcm").read_bytes())
    zipped = tmp_path / "more.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("IM0002", testdata_path("MR_small.dcm").read_bytes())
        archive.writestr("../evil.dcm", b"x")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"2 of 6 files failed"):
        call_command(
            "import_dicom",
            *[str(p) for p in (folder, zipped, testdata_path("JPEG2000.dcm"), tmp_path / "missing")],
            "--institution",
            clinic.code,
            "--no-progress",
            stdout=out,
        )
    assert outcomes_of(out.getvalue()) == {
        f"{zipped}/../evil.dcm": "rejected",
        str(tmp_path / "missing"): "rejected",
        f"{folder}/DICOMDIR": "skipped",
    }
    assert "stored 3, duplicate 0, conflict 0, rejected 2, skipped 1" in out.getvalue()
    assert Instance.objects.filter(institution=clinic).count() == 3


def test_the_summary_lists_every_failure_with_its_reason(tmp_path: Path, clinic: Institution) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    out, _err = import_dicom(
        testdata_path("CT_small.dcm"), junk, tmp_path / "missing", "--institution", clinic.code, "--allow-failures"
    )
    lines = out.splitlines()
    assert "stored 1, duplicate 0, conflict 0, rejected 2, skipped 0" in lines[1]
    assert lines[2] == "Failed:"
    assert lines[3].startswith(f"  {junk}: rejected: not a DICOM file")
    assert lines[4] == f"  {tmp_path / 'missing'}: rejected: no such file or folder"


def test_importing_again_finds_only_duplicates_and_succeeds(clinic: Institution) -> None:
    files = [testdata_path("CT_small.dcm"), testdata_path("MR_small.dcm")]
    import_dicom(*files, "--institution", clinic.code, "--no-progress")
    out, _err = import_dicom(*files, "--institution", clinic.code, "--no-progress")
    assert "stored 0, duplicate 2, conflict 0, rejected 0, skipped 0" in out


def test_a_conflict_fails_the_run_unless_failures_are_allowed(tmp_path: Path, clinic: Institution) -> None:
    import_dicom(testdata_path("CT_small.dcm"), "--institution", clinic.code, "--no-progress")
    changed = pydicom.dcmread(testdata_path("CT_small.dcm"))
    changed.SeriesDescription = "edited after sending"
    changed.save_as(tmp_path / "edited.dcm")
    with pytest.raises(CommandError, match="1 of 1 files failed"):
        import_dicom(tmp_path / "edited.dcm", "--institution", clinic.code, "--no-progress")
    out, _err = import_dicom(tmp_path / "edited.dcm", "--institution", clinic.code, "--no-progress", "--allow-failures")
    assert "conflict: an instance with this SOP Instance UID is already stored with different contents" in out


def test_progress_goes_to_stderr_on_one_line_unless_silenced(clinic: Institution) -> None:
    files = [testdata_path("CT_small.dcm"), testdata_path("MR_small.dcm")]
    _out, err = import_dicom(*files, "--institution", clinic.code)
    assert err.startswith("\r") and err.endswith("\n") and err.count("\n") == 1
    assert "2/2 files" in err and "MB/s" in err
    _out, err = import_dicom(*files, "--institution", clinic.code, "--no-progress")
    assert err == ""


def test_unknown_and_inactive_institutions_are_refused(clinic: Institution) -> None:
    with pytest.raises(CommandError, match="no institution with code 99999999"):
        import_dicom(testdata_path("CT_small.dcm"), "--institution", "99999999")
    clinic.is_active = False
    clinic.save()
    with pytest.raises(CommandError, match="is inactive"):
        import_dicom(testdata_path("CT_small.dcm"), "--institution", clinic.code)


@pytest.mark.django_db(transaction=True)  # previews render in threads with connections of their own
def test_without_a_celery_worker_the_import_renders_its_previews_before_it_exits(
    clinic: Institution, settings: Any, slow_previews: None
) -> None:
    # The embedded default: this process's threads render the previews. A command that
    # returned before them left them to be cut off at interpreter exit.
    settings.TASK_MODE = "thread"
    # One study: one task, so that no two threads write at once to the tests' in-memory
    # SQLite database (its shared cache locks tables instead of waiting for them).
    out, _err = import_dicom(testdata_path("CT_small.dcm"), "--institution", clinic.code, "--no-progress")
    assert "Rendering the previews in this process" in out
    assert "previews done in" in out
    statuses = set(Instance.objects.filter(institution=clinic).values_list("preview_status", flat=True))
    assert statuses == {Instance.PreviewStatus.READY}


@pytest.mark.django_db(transaction=True)
def test_an_import_that_stored_nothing_new_does_not_wait_for_previews(clinic: Institution, settings: Any) -> None:
    settings.TASK_MODE = "thread"
    import_dicom(testdata_path("CT_small.dcm"), "--institution", clinic.code, "--no-progress")
    out, _err = import_dicom(testdata_path("CT_small.dcm"), "--institution", clinic.code, "--no-progress")
    assert "duplicate 1" in out
    assert "Rendering the previews" not in out  # nothing new to render
