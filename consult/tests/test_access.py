"""Tenant isolation: every consultation URL × every persona.

Requesting-institution members (any role) and the target's readers see a
consultation; everyone else — the target's non-readers, another clinic,
another health center's readers, platform admins — gets 404, the same as
for a consultation that does not exist. Anonymous people are sent to sign in.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from consult import services
from consult.models import Comment, Consultation, Notification, Report
from consult.tests.helpers import bring_to
from imaging.models import Instance
from institutions.models import User
from institutions.testing import anonymous_client, client_for

pytestmark = pytest.mark.django_db
Status = Consultation.Status

SEES = ("doctor", "clerk", "clinic_admin", "reader")
BLIND = ("hc_admin", "outsider", "other_reader", "platform_admin")


@pytest.fixture
def people(
    doctor: User,
    clerk: User,
    clinic_admin: User,
    reader: User,
    hc_admin: User,
    outsider: User,
    other_reader: User,
    platform_admin: User,
) -> dict[str, User]:
    return {
        "doctor": doctor,
        "clerk": clerk,
        "clinic_admin": clinic_admin,
        "reader": reader,
        "hc_admin": hc_admin,
        "outsider": outsider,
        "other_reader": other_reader,
        "platform_admin": platform_admin,
    }


@pytest.fixture
def reported(consultation: Consultation, doctor: User, reader: User) -> Consultation:
    bring_to(Status.REPORTED, consultation, doctor, reader)
    instance = Instance.objects.filter(study=consultation.study).first()
    services.comment_add(consultation=consultation, actor=reader, body="이 부분입니다", key_images=[(instance, 0)])
    return consultation


def _get_urls(c: Consultation) -> dict[str, str]:
    key_image = Comment.objects.get(consultation=c).key_images.get()
    base = f"/consultations/{c.uuid}"
    return {
        "detail": f"{base}/",
        "state": f"{base}/state/",
        "print": f"{base}/report/print/",
        "pdf": f"{base}/report.pdf",
        "key_image": f"{base}/key-images/{key_image.pk}.jpg",
        "editor": f"{base}/report/",
    }


GET_EXPECTED = {
    # url: {persona: status} for the personas who see the consultation
    "detail": {"doctor": 200, "clerk": 200, "clinic_admin": 200, "reader": 200},
    "state": {"doctor": 200, "clerk": 200, "clinic_admin": 200, "reader": 200},
    "print": {"doctor": 200, "clerk": 200, "clinic_admin": 200, "reader": 200},
    "pdf": {"doctor": 200, "clerk": 200, "clinic_admin": 200, "reader": 200},
    "key_image": {"doctor": 200, "clerk": 200, "clinic_admin": 200, "reader": 200},
    # The editor is the readers' alone; with nothing to write it goes back to the consultation.
    "editor": {"doctor": 404, "clerk": 404, "clinic_admin": 404, "reader": 302},
}


@pytest.mark.parametrize("name", list(GET_EXPECTED))
def test_every_page_of_a_consultation_answers_each_persona_as_it_should(
    reported: Consultation, people: dict[str, User], name: str
) -> None:
    url = _get_urls(reported)[name]
    for persona in SEES:
        response = client_for(people[persona]).get(url)
        assert response.status_code == GET_EXPECTED[name][persona], (name, persona)
    for persona in BLIND:
        response = client_for(people[persona]).get(url)
        assert response.status_code == 404, (name, persona)
        assert "이 부분입니다".encode() not in response.content
    response = anonymous_client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def _post_urls(c: Consultation) -> dict[str, str]:
    base = f"/consultations/{c.uuid}"
    return {
        "accept": f"{base}/actions/accept/",
        "decline": f"{base}/actions/decline/",
        "cancel": f"{base}/actions/cancel/",
        "close": f"{base}/actions/close/",
        "comment": f"{base}/comments/",
        "draft": f"{base}/report/draft/",
        "sign": f"{base}/report/sign/",
        "addendum": f"{base}/report/addendum/",
    }


@pytest.mark.parametrize("name", list(_post_urls(Consultation(uuid=uuid.uuid4()))))
def test_no_write_reaches_a_consultation_one_cannot_see(
    consultation: Consultation, people: dict[str, User], name: str
) -> None:
    url = _post_urls(consultation)[name]
    data = {"reason": "x", "body": "엿보기", "findings": "x", "impression": "x"}
    for persona in BLIND:
        response = client_for(people[persona]).post(url, data)
        assert response.status_code == 404, (name, persona)
    assert anonymous_client().post(url, data).status_code == 302
    consultation.refresh_from_db()
    assert (consultation.status, consultation.version) == (Status.REQUESTED, 1)
    assert not Comment.objects.exists()
    assert not Report.objects.exists()


@pytest.mark.parametrize("name", ["draft", "sign", "addendum"])
def test_the_requesting_side_cannot_write_reports(
    consultation: Consultation, people: dict[str, User], reader: User, name: str
) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    for persona in ("doctor", "clerk", "clinic_admin"):
        response = client_for(people[persona]).post(_post_urls(consultation)[name], {"findings": "x"})
        assert response.status_code == 404, persona
    assert not Report.objects.exists()


def test_unknown_and_malformed_consultations_are_404(reader: User) -> None:
    client = client_for(reader)
    assert client.get(f"/consultations/{uuid.uuid4()}/").status_code == 404
    assert client.get("/consultations/not-a-uuid/").status_code == 404
    assert client.post(f"/consultations/{uuid.uuid4()}/actions/accept/").status_code == 404


def test_worklists_show_only_ones_own_institutions(
    consultation: Consultation, people: dict[str, User], reader: User
) -> None:
    marker = str(consultation.uuid)
    assert marker in client_for(people["reader"]).get("/consultations/incoming/").content.decode()
    assert client_for(people["other_reader"]).get("/consultations/incoming/").status_code == 200
    assert marker not in client_for(people["other_reader"]).get("/consultations/incoming/").content.decode()
    for persona in ("doctor", "clerk", "outsider", "hc_admin", "platform_admin"):
        assert client_for(people[persona]).get("/consultations/incoming/").status_code == 404, persona
    assert marker in client_for(people["clerk"]).get("/consultations/requests/").content.decode()
    assert marker not in client_for(people["outsider"]).get("/consultations/requests/").content.decode()
    assert client_for(people["platform_admin"]).get("/consultations/requests/").status_code == 404


def test_notifications_are_private_to_their_user(
    consultation: Consultation, people: dict[str, User], reader: User
) -> None:
    assert Notification.objects.filter(user=reader).count() == 1
    assert "No notifications." in client_for(people["outsider"]).get("/notifications/").content.decode()
    assert "Routine CT reading request from" in client_for(reader).get("/notifications/").content.decode()
    assert client_for(people["outsider"]).get("/notifications/unread/").json() == {"unread": 0}
    assert client_for(reader).get("/notifications/unread/").json() == {"unread": 1}


def test_the_requesting_clinic_cannot_read_other_clinics_studies_through_a_consultation(
    consultation: Consultation, outsider: User, other_clinic, doctor: User, health_center
) -> None:
    from imaging.testing import make_study

    foreign = make_study(other_clinic, "MR_small.dcm", actor=outsider)
    client: Client = client_for(doctor)
    # Not by asking for a reading of it…
    assert client.get(f"/consultations/new/{foreign.study_instance_uid}/").status_code == 404
    assert client.post(f"/consultations/new/{foreign.study_instance_uid}/", {}).status_code == 404
    # …nor by pointing a key image at it…
    foreign_instance = Instance.objects.get(study=foreign)
    response = client.post(
        f"/consultations/{consultation.uuid}/comments/", {"body": "봐주세요", "key_image": foreign_instance.pk}
    )
    assert response.status_code == 400
    # …nor by sharing it as a "prior" study.
    with pytest.raises(Exception, match="same patient"):
        services.consultation_create(
            actor=doctor,
            study=consultation.study,
            target=health_center,
            priority=0,
            clinical_question="q",
            related_studies=[foreign],
        )
