"""Test helpers for every app: put real DICOM files into the archive."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

from imaging.ingest import EntryPoint, IngestResult, IngestSession
from imaging.models import Study
from institutions.models import Institution, User


def testdata_path(name: str) -> Path:
    """A file shipped with pydicom or pydicom-data (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        from pydicom.data import get_charset_files

        matches = [p for p in get_charset_files(name)]
        if not matches:
            raise FileNotFoundError(name)
        path = matches[0]
    return Path(str(path))


def ingest_testdata(
    institution: Institution, *names: str, actor: User | None = None, entry_point: str = EntryPoint.IMPORT
) -> list[IngestResult]:
    with IngestSession(institution=institution, entry_point=entry_point, actor=actor) as session:
        for name in names:
            session.add_file(testdata_path(name))
    return session.results


def make_study(institution: Institution, name: str = "CT_small.dcm", actor: User | None = None) -> Study:
    """A study owned by *institution*, from one of pydicom's real files."""
    (result,) = ingest_testdata(institution, name, actor=actor)
    assert result.ok, result.reason
    return Study.objects.get(institution=institution, study_instance_uid=result.study_instance_uid)
