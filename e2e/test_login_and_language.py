from __future__ import annotations

import pytest

from e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_a_demo_user_signs_in_sees_korean_and_switches_to_english(new_page) -> None:
    page = new_page(locale="ko-KR")
    page.goto("/")
    assert "/accounts/login/" in page.url
    assert page.locator("html").get_attribute("lang") == "ko"
    sign_in(page, "doctor")
    assert page.locator("h1").inner_text() == "이의사 님, 환영합니다"
    assert page.get_by_role("cell", name="밝은내과의원 31200101").first.is_visible()

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Welcome, 이의사"
    assert page.locator("html").get_attribute("lang") == "en"

    # The choice is saved on the account: a new browser after sign-in is English too.
    other = new_page(locale="ko-KR")
    sign_in(other, "doctor@balgeun.clinicnet.local")
    assert other.locator("h1").inner_text() == "Welcome, 이의사"


def test_a_wrong_password_shows_an_error(new_page) -> None:
    page = new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "clerk")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit].primary")
    assert "/accounts/login/" in page.url
    assert page.locator(".errors").is_visible()
