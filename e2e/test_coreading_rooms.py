"""Finding a room: the viewer's "Read together" offers a consultation's room nobody opened yet,
and the study page's "Read together" panel leads into an open room.

The doctor asks the health center to read the demo MR study (a consultation of its own, so
that no other test has opened its room), opens the viewer, finds the consultation's room in
"Read together" and opens it; the reader, on the study page, follows its link into the same
room in the viewer.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from e2e.conftest import ARTIFACTS, ROOT, sign_in

pytestmark = pytest.mark.e2e

QUESTION = "MR 같이 보기 시험: 판독실 찾기"


def _mr_consultation(server: object) -> tuple[str, str]:
    """A consultation on the demo clinic's MR study (made once), its uuid and the study's UID."""
    code = (
        "from consult import services; from consult.demo import DEMO_CLINIC, DEMO_HEALTH_CENTER; "
        "from consult.models import Consultation; from imaging.models import Study; "
        "from institutions.models import Institution, User; "
        f"q = {QUESTION!r}; "
        "study = Study.objects.filter(institution__code=DEMO_CLINIC, modalities__contains='MR')"
        ".order_by('id').first(); "
        "c = Consultation.objects.filter(clinical_question=q).first() or services.consultation_create("
        "actor=User.objects.get(username='doctor'), study=study, "
        "target=Institution.objects.get(code=DEMO_HEALTH_CENTER), priority=Consultation.Priority.ROUTINE, "
        "clinical_question=q, send_notifications=False); "
        "print(c.uuid, study.study_instance_uid)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=server.env,  # type: ignore[attr-defined]
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    consultation, study = out.stdout.strip().splitlines()[-1].split()
    return consultation, study


def test_the_viewer_offers_a_consultation_room_and_the_study_page_leads_into_it(server, new_page) -> None:
    consultation, study = _mr_consultation(server)

    doctor = new_page(locale="ko-KR")
    sign_in(doctor, "doctor")
    doctor.goto(f"/studies/{study}/viewer/")
    doctor.wait_for_selector(".viewport-cell[data-cell='0'][data-state='ready']", timeout=30_000)
    doctor.click(".coreading-toggle")
    button = f"button[data-consultation='{consultation}']"
    offer = doctor.locator(f".coreading-room-list {button}")
    offer.wait_for()
    assert "판독 의뢰" in doctor.locator(".coreading-room-list li", has=doctor.locator(button)).inner_text()
    offer.click()
    doctor.wait_for_selector(".coreading-panel[data-status='live'][data-role='leading']")
    room = doctor.evaluate("new URLSearchParams(location.search).get('room')")
    assert room

    reader = new_page(locale="ko-KR")
    sign_in(reader, "reader")
    reader.goto(f"/studies/{study}/")
    link = reader.locator(f"#read-together tr[data-room='{room}'] a")
    assert link.get_attribute("href") == f"/studies/{study}/viewer/?room={room}"
    assert not reader.locator(f"#read-together tr[data-consultation='{consultation}']").count()
    link.click()
    reader.wait_for_selector(".viewport-cell[data-cell='0'][data-state='ready']", timeout=30_000)
    reader.wait_for_selector(".coreading-panel[data-status='live'][data-role='following']")
    for page in (doctor, reader):
        page.wait_for_function("document.querySelectorAll('.coreading-avatar').length === 2")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    reader.screenshot(path=str(ARTIFACTS / "coreading-rooms-reader-joined.png"))
