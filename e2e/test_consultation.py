"""Emergency reading end to end: the clinic asks, the reader is alerted live, reads and signs, the clinic sees it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from e2e.conftest import ROOT, sign_in

pytestmark = pytest.mark.e2e

FINDINGS = "좌상엽에 15 mm 크기의 불규칙한 결절이 있습니다. 종격동 림프절 비대는 없습니다."
IMPRESSION = "폐암 가능성을 배제할 수 없어 흉부외과 진료를 권합니다."


def _demo_study_uid(server: object) -> str:
    """A study of the demo clinic (밝은내과의원) with images, straight from the server's database."""
    code = (
        "from imaging.models import Study; "
        "s = Study.objects.filter(institution__code='31200101', number_of_instances__gt=0, modalities__contains='MR')"
        ".order_by('id').first() or Study.objects.filter(institution__code='31200101').order_by('id').first(); "
        "print(s.study_instance_uid)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=server.env,  # type: ignore[attr-defined]
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_an_emergency_reading_from_request_to_signed_report(server, new_page) -> None:
    uid = _demo_study_uid(server)

    reader = new_page(locale="ko-KR")
    sign_in(reader, "reader")
    reader.goto("/consultations/incoming/")
    reader.wait_for_function("window.clinicnetEvents && window.clinicnetEvents.connected")
    # Marks this very document: if the page reloaded, the mark would be gone.
    reader.evaluate("window.__sameDocument = true")
    emergencies_before = reader.locator("#incoming tr.emergency").count()

    doctor = new_page(locale="ko-KR")
    sign_in(doctor, "doctor")
    doctor.goto(f"/consultations/new/{uid}/")
    doctor.select_option("select[name=priority]", "2")
    doctor.fill("textarea[name=clinical_question]", "객혈로 내원. 폐 종괴 여부 응급 판독 부탁드립니다.")
    doctor.click("#consultation-form button[type=submit]")
    doctor.wait_for_url("**/consultations/*-*/")
    consultation_url = doctor.url

    # The reader is alerted live: a red emergency banner, and the worklist row, without a reload.
    banner = reader.locator(".consult-alert.emergency")
    banner.wait_for()
    assert "응급 판독 의뢰" in banner.inner_text()
    assert "밝은내과의원" in banner.inner_text()
    reader.wait_for_function(f"document.querySelectorAll('#incoming tr.emergency').length > {emergencies_before}")
    assert reader.evaluate("window.__sameDocument") is True
    assert reader.locator("[data-consult-unread]").inner_text() != "0"
    first_row = reader.locator("#incoming tbody tr").first
    assert "응급" in first_row.inner_text()  # emergencies come first

    # Accept, write (autosaved) and sign.
    banner.get_by_role("link", name="열기").click()
    reader.wait_for_url(consultation_url)
    reader.click("button[data-action=accept]")
    reader.click("a[data-write-report]")
    reader.wait_for_selector("#report-form")
    reader.fill("#report-findings", FINDINGS)
    reader.fill("#report-impression", IMPRESSION)
    reader.wait_for_function("document.getElementById('report-save-status').textContent.includes('저장됨')")
    reader.click("button[data-sign]")
    reader.wait_for_url(consultation_url)
    assert FINDINGS in reader.locator("[data-report-findings]").inner_text()

    # The clinic's page brings the signed report in by itself.
    doctor.wait_for_selector("[data-report-impression]")
    assert IMPRESSION in doctor.locator("[data-report-impression]").inner_text()
    assert "보고됨" in doctor.locator("h1").inner_text()
    doctor.goto("/consultations/requests/")
    assert doctor.locator("#requests tbody tr").first.get_by_role("link", name="보고서 보기").is_visible()
    pdf = doctor.request.get(consultation_url + "report/print/")
    assert pdf.ok and FINDINGS in pdf.text()
