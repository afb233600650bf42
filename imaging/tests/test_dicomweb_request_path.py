"""What one DICOMweb request costs, and what it may never skip.

The viewer sends a request per frame, so /dicomweb/ takes a shorter middleware chain
(``DICOMWEB_MIDDLEWARE``) and a fixed, small number of queries. The access check still runs on
every request, deactivation still cuts a signed-in viewer off at its next frame, and the answers
keep their security headers.
"""

from __future__ import annotations

import pytest
from django.test import Client

from imaging.models import Instance, Study
from imaging.testing import make_study
from institutions.models import Institution, Membership, User
from institutions.testing import client_for
from institutions.tokens import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct(clinic: Institution) -> Study:
    return make_study(clinic, "CT_small.dcm")


def _frame_url(study: Study) -> str:
    instance = Instance.objects.select_related("series").get(study=study)
    return (
        f"/dicomweb/studies/{study.study_instance_uid}/series/{instance.series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}/frames/1"
    )


def test_a_signed_in_frame_request_reads_the_session_the_user_the_memberships_and_the_study(
    ct: Study, doctor: User, django_assert_num_queries: object
) -> None:
    client = client_for(doctor)
    url = _frame_url(ct)
    assert client.get(url).status_code == 200  # the first one also audits, renews the session, reads the instance
    # The memberships are read once, by ActiveAccessMiddleware, and reused by the access check.
    with django_assert_num_queries(4):  # type: ignore[operator]
        assert client.get(url).status_code == 200


def test_a_token_frame_request_reads_the_token_the_study_and_the_memberships(
    ct: Study, doctor: User, django_assert_num_queries: object
) -> None:
    client = Client(headers={"authorization": f"Bearer {token_create(user=doctor, name='viewer')[1]}"})
    url = _frame_url(ct)
    assert client.get(url).status_code == 200
    with django_assert_num_queries(3):  # type: ignore[operator]
        assert client.get(url).status_code == 200


def test_what_one_person_fetched_opens_nothing_to_another(
    ct: Study, doctor: User, outsider: User, reader: User
) -> None:
    url = _frame_url(ct)
    assert client_for(doctor).get(url).status_code == 200  # now the instance is in the process's cache
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(reader).get(url).status_code == 404  # a reader without a grant
    rendered = url.replace("/frames/1", "/rendered")
    assert client_for(doctor).get(rendered).status_code == 200
    assert client_for(outsider).get(rendered).status_code == 404


def test_a_viewer_whose_last_membership_is_switched_off_gets_401_at_the_next_frame(ct: Study, doctor: User) -> None:
    client = client_for(doctor)
    url = _frame_url(ct)
    assert client.get(url).status_code == 200
    Membership.objects.filter(user=doctor).update(is_active=False)
    assert client.get(url).status_code == 401
    Membership.objects.filter(user=doctor).update(is_active=True)
    assert client.get(url).status_code == 401  # signed out, not just refused once


def test_answers_keep_the_security_headers_and_set_no_page_cookies(ct: Study, doctor: User) -> None:
    response = client_for(doctor).get(_frame_url(ct))
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Language"] == "en"  # the user's language, for the messages of errors
    assert "csrftoken" not in response.cookies
    assert "messages" not in response.cookies


def test_error_messages_are_in_the_users_language(ct: Study, doctor: User) -> None:
    User.objects.filter(pk=doctor.pk).update(language=User.Language.KOREAN)
    response = client_for(doctor).get(_frame_url(ct).replace("/frames/1", "/frames/x"))
    assert response.status_code == 400
    assert response["Content-Language"] == "ko"
    assert "프레임 번호" in response.content.decode()
