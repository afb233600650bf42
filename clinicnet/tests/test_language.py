from __future__ import annotations

import pytest

from institutions.models import User
from institutions.testing import anonymous_client, client_for, make_member

pytestmark = pytest.mark.django_db


def test_the_interface_is_korean_by_default() -> None:
    page = anonymous_client(language="").get("/accounts/login/")
    assert page["Content-Language"] == "ko"
    assert "로그인" in page.content.decode()


def test_a_signed_in_user_switches_to_english_and_it_sticks(clinic) -> None:
    user = make_member(clinic, language="ko")
    client = client_for(user)
    assert "환영합니다" in client.get("/").content.decode()
    response = client.post("/language/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.language == "en"
    assert "Welcome" in client.get("/").content.decode()
    # Saved on the account, so another browser gets English too.
    assert "Welcome" in client_for(user).get("/", headers={"accept-language": "ko"}).content.decode()


def test_an_unknown_language_is_refused(doctor: User) -> None:
    assert client_for(doctor).post("/language/", {"language": "xx"}).status_code == 400


def test_next_cannot_point_to_another_site() -> None:
    response = anonymous_client().post("/language/", {"language": "en", "next": "https://evil.example/"})
    assert response["Location"] == "/"
