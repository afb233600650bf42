"""A clinic clerk uploads a copied CD folder and watches the study turn ready, live."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2e.conftest import sign_in
from imaging import synthetic
from imaging.testing import testdata_path

pytestmark = pytest.mark.e2e


def make_cd(folder: Path) -> Path:
    """A copied CD: DICOMDIR, three CT slices of a new patient, and a viewer's autorun file."""
    cd = folder / "CD"
    (cd / "DICOM" / "ST1").mkdir(parents=True)
    shutil.copy(testdata_path("DICOMDIR"), cd / "DICOMDIR")
    for index in range(3):
        ds = synthetic.ct_slice(index, slices=3, size=256, study_key="e2e-upload-cd")
        ds.PatientName = "Upload^Browser"
        ds.PatientID = "E2E-UPLOAD-1"
        synthetic.write(ds, cd / "DICOM" / "ST1" / f"IM{index + 1:04d}")
    (cd / "AUTORUN.INF").write_text("[autorun]\nopen=viewer.exe\n")
    return cd


def test_a_clerk_uploads_a_cd_folder_and_sees_the_study_become_ready(new_page, tmp_path: Path) -> None:
    page = new_page(locale="en-US")
    sign_in(page, "clerk")
    page.get_by_role("button", name="English").click()

    # The study list is open in a second window, to see the new study arrive live.
    watcher = new_page(locale="en-US")
    sign_in(watcher, "clerk")
    watcher.goto("/studies/?q=E2E-UPLOAD-1")
    assert "No studies match" in watcher.locator("#studies").inner_text()

    page.goto("/upload/")
    page.set_input_files("#folder-input", str(make_cd(tmp_path)))
    page.wait_for_selector("body[data-upload-idle=true]", timeout=60_000)
    results = page.locator("#results tbody tr")
    outcomes = {row.locator(".name").inner_text(): row.get_attribute("data-outcome") for row in results.all()}
    assert outcomes["CD/DICOM/ST1/IM0001"] == "stored"
    assert outcomes["CD/DICOM/ST1/IM0002"] == "stored"
    assert outcomes["CD/DICOM/ST1/IM0003"] == "stored"
    assert outcomes["CD/DICOMDIR"] == "skipped"
    assert outcomes["CD/AUTORUN.INF"] == "rejected"
    assert "3 stored" in page.locator("#summary").inner_text()

    # Without reloading, the other tab lists the study and shows it ready.
    row = watcher.locator("#studies tbody tr[data-study]")
    row.first.wait_for(timeout=30_000)
    watcher.wait_for_selector("#studies tr[data-status=ready]", timeout=30_000)
    assert "Ready" in row.first.inner_text() or "ready" in row.first.inner_text()

    # The study page shows a preview for every image.
    row.first.locator("a").first.click()
    page2 = watcher
    page2.wait_for_selector(".preview img")
    images = page2.locator(".preview img")
    assert images.count() == 3
    # Every preview image loads (they are lazy: bring them into view).
    images.last.scroll_into_view_if_needed()
    page2.wait_for_function(
        "Array.from(document.querySelectorAll('.preview img')).every(i => i.complete && i.naturalWidth > 0)",
        timeout=20_000,
    )
