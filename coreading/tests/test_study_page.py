""" "Read together" on the study page: rooms to join in the viewer, consultation rooms to open."""

from __future__ import annotations

import re

import pytest

from consult.models import Consultation
from consult.tests.helpers import bring_to
from coreading.models import Room
from imaging.models import Study
from institutions.models import User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db


def panel(user: User, study: Study) -> str:
    """The HTML of the "Read together" section of the study page as *user* sees it."""
    response = client_for(user).get(f"/studies/{study.study_instance_uid}/")
    assert response.status_code == 200
    page = response.content.decode()
    found = re.search(r'<section class="card study-panel" id="read-together">.*?</section>', page, re.S)
    assert found is not None
    return found.group(0)


def row(section: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{value}">.*?</tr>', section, re.S)
    assert found is not None, section
    return found.group(0)


def test_the_study_page_links_each_open_room_to_the_viewer(adhoc_room: Room, study: Study, clerk: User) -> None:
    link = row(panel(clerk, study), "data-room", str(adhoc_room.uuid))
    assert f'href="/studies/{study.study_instance_uid}/viewer/?room={adhoc_room.uuid}"' in link
    assert "같이 보기" in link and "Join in the viewer" in link


def test_a_consultation_without_a_room_is_opened_from_the_study_page(
    consultation: Consultation, study: Study, reader: User
) -> None:
    offer = row(panel(reader, study), "data-consultation", str(consultation.uuid))
    action = f"/coreading/consultations/{consultation.uuid}/room/"
    assert f'<form method="post" action="{action}">' in offer
    requester, target = consultation.requesting_institution, consultation.target_institution
    assert f"Reading request: {requester.name_en} → {target.name_en}" in offer  # English, the personas' language
    response = client_for(reader).post(action)
    room = Room.objects.get(consultation=consultation)
    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.study_instance_uid}/viewer/?room={room.uuid}"
    # Opened: now a room to join, for the requesting side too.
    section = panel(reader, study)
    assert "?room=" in row(section, "data-room", str(room.uuid))
    assert "data-consultation" not in section


def test_an_ended_consultation_room_is_not_opened_and_the_page_says_why(
    consultation: Consultation, study: Study, doctor: User, reader: User
) -> None:
    bring_to(Consultation.Status.CANCELLED, consultation, doctor, reader)
    client = client_for(doctor)
    response = client.post(f"/coreading/consultations/{consultation.uuid}/room/", follow=True)
    assert response.redirect_chain[-1][0] == f"/studies/{study.study_instance_uid}/"
    assert "cancelled" in response.content.decode()
    assert not Room.objects.exists()


def test_strangers_cannot_open_a_consultation_room(consultation: Consultation, outsider: User) -> None:
    assert client_for(outsider).post(f"/coreading/consultations/{consultation.uuid}/room/").status_code == 404
    assert client_for(outsider).get(f"/coreading/consultations/{consultation.uuid}/room/").status_code == 405
    assert not Room.objects.exists()


def test_with_no_room_the_panel_says_how_to_start_one(study: Study, doctor: User) -> None:
    section = panel(doctor, study)
    assert f'<a href="/studies/{study.study_instance_uid}/viewer/">in the viewer</a>' in section
    assert "<tr" not in section
