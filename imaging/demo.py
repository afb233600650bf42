"""Demo studies for `make run` (idempotent: a second load finds duplicates)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from imaging import synthetic
from imaging.ingest import EntryPoint, IngestSession
from imaging.testing import testdata_path
from institutions.models import Institution

# pydicom's real sample files the demo clinic "uploaded".
CLINIC_FILES = [
    "chrKoreanMulti.dcm",  # CR header with a Korean name (no pixels)
    "RG1_UNCR.dcm",  # CR chest, MONOCHROME1
    "MR_small.dcm",
    "US1_J2KR.dcm",  # ultrasound, JPEG 2000
    "emri_small.dcm",  # MR, 10 frames
    "SC_rgb_rle.dcm",  # RGB, RLE
]
CLINIC_CODE = "31200101"  # 밝은내과의원
DENTAL_CODE = "31200303"  # 한빛치과의원
CT_SLICES = 60


def load(write: Callable[[str], None]) -> None:
    clinic = Institution.objects.get(code=CLINIC_CODE)
    dental = Institution.objects.get(code=DENTAL_CODE)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        with IngestSession(institution=clinic, entry_point=EntryPoint.IMPORT, actor_label="demo data") as session:
            for name in CLINIC_FILES:
                try:
                    session.add_file(testdata_path(name))
                except FileNotFoundError:
                    write(f"demo: {name} is not installed (pydicom-data), skipped")
            for index in range(CT_SLICES):
                path = synthetic.write(synthetic.ct_slice(index, slices=CT_SLICES), root / f"ct{index:03d}.dcm")
                session.add_file(path)
        results.extend(session.results)
        with IngestSession(institution=dental, entry_point=EntryPoint.IMPORT, actor_label="demo data") as session:
            session.add_file(synthetic.write(synthetic.dental_panoramic(), root / "px.dcm"))
            session.add_file(synthetic.write(synthetic.intraoral(), root / "io.dcm"))
        results.extend(session.results)
    counts = {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in ("stored", "duplicate")}
    failed = [r for r in results if not r.ok]
    write(f"demo images: {counts['stored']} stored, {counts['duplicate']} already there")
    for result in failed:
        write(f"demo image {result.name}: {result.outcome}: {result.reason}")
