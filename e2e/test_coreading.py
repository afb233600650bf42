"""Co-reading end to end: the clinic's doctor and the health center's reader read the demo CT together.

Two browser contexts (two institutions) join the demo consultation's room: the follower's
slice and window follow the leader, a laser pointer shows up on the other screen, a
measurement drawn by one appears for the other and comes back after a reload, and chat
arrives. Screenshots of both screens land in e2e/artifacts/.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from e2e.conftest import ARTIFACTS, ROOT, sign_in

pytestmark = pytest.mark.e2e

LENGTHS = "document.querySelectorAll('.viewport-cell svg [data-annotation-uid]').length"


def _demo_consultation(server: object) -> tuple[str, str]:
    """The demo consultation's uuid and its study's UID (consult/demo.py), from the server's database."""
    code = (
        "from consult.models import Consultation; from consult.demo import DEMO_QUESTION; "
        "c = Consultation.objects.select_related('study').get(clinical_question=DEMO_QUESTION); "
        "print(c.uuid, c.study.study_instance_uid)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=server.env,  # type: ignore[attr-defined]
        check=True,
        capture_output=True,
        text=True,
    )
    consultation, study = out.stdout.strip().splitlines()[-1].split()
    return consultation, study


def _open_room(page: object, consultation: str) -> dict[str, object]:
    """Get or open the consultation's room through the HTTP API, as the signed-in user of *page*."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")  # type: ignore[attr-defined]
    response = page.request.post(  # type: ignore[attr-defined]
        f"/api/coreading/consultations/{consultation}/room/", headers={"X-CSRFToken": token}
    )
    assert response.status in (200, 201), response.text()
    return response.json()


def _open_viewer(page: object, url: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_selector(".viewport-cell[data-cell='0'][data-state='ready']", timeout=30_000)  # type: ignore[attr-defined]
    page.wait_for_selector(".coreading-panel[data-status='live']")  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"coreading-{name}.png"))  # type: ignore[attr-defined]


def _image(page: object) -> str:
    box = page.locator(".viewport-cell[data-cell='0'] > .viewport-element").bounding_box()  # type: ignore[attr-defined]
    assert box
    return box


def test_a_doctor_and_a_reader_read_the_demo_ct_together(server, new_page) -> None:
    started = time.monotonic()
    consultation, study = _demo_consultation(server)

    doctor = new_page(locale="ko-KR")
    sign_in(doctor, "doctor")
    room = _open_room(doctor, consultation)
    assert room["study"] == study and room["kind"] == "consultation"
    viewer_url = f"/studies/{study}/viewer/?room={room['id']}"

    # The doctor comes first and leads; the reader joins and follows.
    _open_viewer(doctor, viewer_url)
    doctor.wait_for_selector(".coreading-panel[data-role='leading']")
    reader = new_page(locale="ko-KR")
    sign_in(reader, "reader")
    _open_viewer(reader, viewer_url)
    reader.wait_for_selector(".coreading-panel[data-role='following']")
    for page in (doctor, reader):
        page.wait_for_function("document.querySelectorAll('.coreading-avatar').length === 2")
    assert "밝은내과의원" in reader.locator(".coreading-avatar.leader").get_attribute("title")

    # Slice and window follow the leader.
    box = _image(doctor)
    doctor.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    doctor.keyboard.press("End")
    doctor.keyboard.press("2")  # CT preset 2: brain, W 80 L 40
    last = doctor.evaluate("document.querySelector('.viewport-cell').dataset.imageIndex")
    assert last not in (None, "0")
    reader.wait_for_function(f"document.querySelector('.viewport-cell').dataset.imageIndex === '{last}'")
    reader.wait_for_function("document.querySelector('.viewport-cell .overlay.br').innerText.includes('W 80 L 40')")
    assert reader.locator(".coreading-panel").get_attribute("data-role") == "following"
    _shot(reader, "1-follows-slice-and-window")

    # The doctor's laser pointer appears on the reader's screen.
    doctor.click(".coreading-pointer")
    for step in range(12):
        doctor.mouse.move(box["x"] + box["width"] * (0.35 + step * 0.02), box["y"] + box["height"] * 0.45)
        time.sleep(0.03)
    reader.wait_for_selector(".coreading-pointers[data-visible='1']")
    _shot(reader, "2-pointer")
    doctor.click(".coreading-pointer")

    # The reader measures; the doctor sees the measurement, coloured as the reader's.
    before = doctor.evaluate(LENGTHS)
    reader_box = _image(reader)
    reader.mouse.move(reader_box["x"] + reader_box["width"] / 2, reader_box["y"] + reader_box["height"] / 2)
    reader.keyboard.press("l")
    reader.mouse.move(reader_box["x"] + reader_box["width"] * 0.35, reader_box["y"] + reader_box["height"] * 0.55)
    reader.mouse.down()
    for step in range(1, 11):
        reader.mouse.move(
            reader_box["x"] + reader_box["width"] * (0.35 + 0.03 * step), reader_box["y"] + reader_box["height"] * 0.55
        )
    reader.mouse.up()
    doctor.wait_for_function(f"{LENGTHS} > {before}")
    assert reader.locator(".coreading-panel").get_attribute("data-role") == "following"
    _shot(doctor, "3-reader-measurement")

    # Chat both ways.
    reader.fill(".coreading-chat-input", "좌상엽 결절 보이세요?")
    reader.keyboard.press("Enter")
    doctor.wait_for_selector(".coreading-messages li[data-id] >> text=좌상엽 결절 보이세요?")
    doctor.fill(".coreading-chat-input", "네, 15 mm 정도입니다.")
    doctor.click(".coreading-chat-form button[type=submit]")
    reader.wait_for_selector(".coreading-messages li[data-id] >> text=네, 15 mm 정도입니다.")

    # After a reload the measurement and the chat come back from the room's snapshot.
    doctor.reload()
    doctor.wait_for_selector(".coreading-panel[data-status='live']")
    doctor.wait_for_selector(".viewport-cell[data-cell='0'][data-state='ready']")
    doctor.wait_for_function(f"document.querySelector('.viewport-cell').dataset.imageIndex === '{last}'")
    doctor.wait_for_function(f"{LENGTHS} > 0")
    assert doctor.locator(".coreading-messages li[data-id]").count() >= 2
    _shot(doctor, "4-after-reload")
    _shot(reader, "5-reader")
    assert time.monotonic() - started < 90
