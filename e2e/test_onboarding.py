"""A platform admin imports the pilot CSV, invites an institution admin, who invites a reader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from e2e.conftest import sign_in

pytestmark = pytest.mark.e2e
SAMPLE = Path(__file__).resolve().parent.parent / "institutions" / "sample" / "pilot_institutions.csv"


def invitation_link(page) -> str:
    text = page.locator(".message.success").inner_text()
    match = re.search(r"https?://\S+/invitations/[\w-]+/", text)
    assert match, text
    return match.group(0)


def test_onboarding_from_csv_to_a_signed_in_radiologist(new_page, tmp_path: Path) -> None:
    admin = new_page(locale="en-US")
    sign_in(admin, "admin")
    admin.get_by_role("button", name="English").click()

    # Import a CSV with one new clinic next to the already-loaded sample.
    csv_file = tmp_path / "more.csv"
    csv_file.write_text(
        SAMPLE.read_text(encoding="utf-8")
        + "31200707,하늘의원,Haneul Clinic,의원,39100044,한빛시 남구 하늘로 7,031-207-0707,예,예,아니오,\n",
        encoding="utf-8",
    )
    admin.goto("/platform/institutions/import/")
    admin.set_input_files("input[name=file]", str(csv_file))
    admin.uncheck("input[name=dry_run]")
    admin.click("button[type=submit].primary")
    summary = admin.locator("#import-report .summary").inner_text()
    assert "1 new, 0 updated, 11 unchanged, 0 bad." in summary

    # Invite an institution admin for the new clinic.
    admin.goto("/platform/institutions/?q=31200707")
    admin.get_by_role("link", name="Members and invitations").click()
    admin.fill("input[name=email]", "director@haneul.example")
    admin.select_option("select[name=role]", "institution_admin")
    admin.click("#invite-form button[type=submit]")
    link = invitation_link(admin)

    director = new_page(locale="en-US")
    director.goto(link)
    director.fill("input[name=username]", "haneul-director")
    director.fill("input[name=name]", "하원장")
    director.fill("input[name=password1]", "Haneul-Clinic-2026!")
    director.fill("input[name=password2]", "Haneul-Clinic-2026!")
    director.click("button[type=submit].primary")
    director.wait_for_url(lambda url: "/invitations/" not in url)

    # The director invites a radiologist.
    director.get_by_role("link", name=re.compile("하늘의원|Haneul")).first.click()
    director.fill("input[name=email]", "reader@haneul.example")
    director.select_option("select[name=role]", "reader")
    director.click("#invite-form button[type=submit]")
    link = invitation_link(director)

    reader = new_page(locale="ko-KR")
    reader.goto(link)
    reader.fill("input[name=username]", "haneul-reader")
    reader.fill("input[name=name]", "한판독")
    reader.fill("input[name=password1]", "Lung-Window-Level-42")
    reader.fill("input[name=password2]", "Lung-Window-Level-42")
    reader.click("button[type=submit].primary")
    reader.wait_for_url(lambda url: "/invitations/" not in url)
    reader.get_by_role("button", name="English").click()

    # And signs in again later with the new password.
    again = new_page(locale="en-US")
    sign_in(again, "reader@haneul.example", "Lung-Window-Level-42")
    assert again.locator("h1").inner_text() == "Welcome, 한판독"
    assert "Radiologist / reader" in again.locator("table").inner_text()
