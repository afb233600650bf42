"""The HTTP API the viewer uses: open, list, invite, remove, close; 404 for strangers."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from clinicnet.audit.models import AuditEvent
from consult.models import Consultation
from consult.tests.helpers import bring_to
from coreading import services
from coreading.models import Participant, Room
from imaging.models import Study
from institutions.models import Institution, User
from institutions.testing import anonymous_client, client_for

pytestmark = pytest.mark.django_db


def post(client: Client, url: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    response = client.post(url, json.dumps(body or {}), content_type="application/json")
    return response.status_code, response.json() if response.content else {}


def test_anyone_who_may_see_the_study_opens_a_room_and_finds_it_listed(study: Study, doctor: User) -> None:
    client = client_for(doctor)
    status, room = post(client, f"/api/coreading/studies/{study.study_instance_uid}/rooms/", {"title": "같이 보기"})
    assert status == 201
    assert room["kind"] == "adhoc" and room["title"] == "같이 보기" and room["can_manage"] is True
    assert room["websocket"] == f"/ws/coreading/{room['id']}/"
    assert room["viewer"] == f"/studies/{study.study_instance_uid}/viewer/?room={room['id']}"
    listed = client.get(f"/api/coreading/studies/{study.study_instance_uid}/rooms/").json()["rooms"]
    assert [r["id"] for r in listed] == [room["id"]]
    assert AuditEvent.objects.filter(action="coreading.room_create", object_id=room["id"]).exists()


def test_strangers_get_404_for_the_study_and_the_room(study: Study, adhoc_room: Room, outsider: User) -> None:
    client = client_for(outsider)
    assert client.get(f"/api/coreading/studies/{study.study_instance_uid}/rooms/").status_code == 404
    assert post(client, f"/api/coreading/studies/{study.study_instance_uid}/rooms/")[0] == 404
    assert client.get(f"/api/coreading/rooms/{adhoc_room.uuid}/").status_code == 404
    assert post(client, f"/api/coreading/rooms/{adhoc_room.uuid}/participants/", {"user": "outsider"})[0] == 404
    assert client.get("/api/coreading/rooms/not-a-uuid/").status_code == 404
    assert anonymous_client().get(f"/api/coreading/rooms/{adhoc_room.uuid}/").status_code == 401


def test_the_consultation_room_is_opened_once_by_either_side(
    consultation: Consultation, doctor: User, reader: User, outsider: User
) -> None:
    url = f"/api/coreading/consultations/{consultation.uuid}/room/"
    assert client_for(doctor).get(url).status_code == 404  # not opened yet
    status, room = post(client_for(reader), url)
    assert status == 201 and room["kind"] == "consultation" and room["consultation"] == str(consultation.uuid)
    status, again = post(client_for(doctor), url)
    assert status == 200 and again["id"] == room["id"]
    assert client_for(doctor).get(url).json()["id"] == room["id"]
    assert post(client_for(outsider), url)[0] == 404
    listed = client_for(reader).get(f"/api/coreading/studies/{consultation.study.study_instance_uid}/rooms/")
    assert [r["id"] for r in listed.json()["rooms"]] == [room["id"]]


def test_an_ended_consultation_gets_no_new_room(consultation: Consultation, doctor: User, reader: User) -> None:
    bring_to(Consultation.Status.CANCELLED, consultation, doctor, reader)
    status, body = post(client_for(doctor), f"/api/coreading/consultations/{consultation.uuid}/room/")
    assert status == 409
    assert "cancelled" in str(body["error"])


def test_inviting_someone_who_may_see_the_study_notifies_them(
    monkeypatch: pytest.MonkeyPatch, adhoc_room: Room, doctor: User, clinic_admin: User
) -> None:
    pushed: list[tuple[list[int], dict[str, object]]] = []
    monkeypatch.setattr(services, "push_to_users", lambda users, event: pushed.append((list(users), event)))
    status, body = post(
        client_for(doctor), f"/api/coreading/rooms/{adhoc_room.uuid}/participants/", {"user": clinic_admin.email}
    )
    assert status == 201
    assert body["member"]["user"] == clinic_admin.pk  # type: ignore[index]
    [(users, event)] = pushed
    assert users == [clinic_admin.pk]
    assert event["type"] == "notification" and event["kind"] == "coreading.invited"
    assert event["url"] == f"/coreading/rooms/{adhoc_room.uuid}/"
    assert event["text"] == "이의사 invited you to read a CT study together"
    room = client_for(clinic_admin).get(f"/api/coreading/rooms/{adhoc_room.uuid}/").json()
    assert clinic_admin.pk in [m["user"] for m in room["members"]]
    assert room["can_manage"] is False
    opened = client_for(clinic_admin).get(f"/coreading/rooms/{adhoc_room.uuid}/")
    assert opened.status_code == 302
    assert opened["Location"] == room["viewer"]


def test_nobody_who_cannot_see_the_study_can_be_invited_and_the_answer_does_not_say_who_exists(
    adhoc_room: Room, doctor: User, outsider: User, clerk: User
) -> None:
    url = f"/api/coreading/rooms/{adhoc_room.uuid}/participants/"
    stranger = post(client_for(doctor), url, {"user": outsider.username})
    nobody = post(client_for(doctor), url, {"user": "nobody@example.org"})
    assert stranger == nobody
    assert stranger[0] == 400
    assert post(client_for(doctor), url, {"user": ""})[0] == 400
    # Only the owner invites.
    assert post(client_for(clerk), url, {"user": outsider.username})[0] == 403


def test_the_owner_removes_people_and_people_may_leave(
    adhoc_room: Room, doctor: User, clerk: User, clinic_admin: User
) -> None:
    post(client_for(doctor), f"/api/coreading/rooms/{adhoc_room.uuid}/participants/", {"user": clinic_admin.username})
    url = f"/api/coreading/rooms/{adhoc_room.uuid}/participants/"
    assert client_for(clerk).delete(f"{url}{clinic_admin.pk}/").status_code == 403
    assert client_for(clerk).delete(f"{url}{clerk.pk}/").status_code == 204  # leaving
    assert client_for(doctor).delete(f"{url}{clinic_admin.pk}/").status_code == 204
    assert client_for(doctor).delete(f"{url}{doctor.pk}/").status_code == 400
    assert not Participant.objects.filter(room=adhoc_room, removed_at__isnull=True).exclude(user=doctor).exists()
    assert client_for(clerk).get(f"/api/coreading/rooms/{adhoc_room.uuid}/").status_code == 404


def test_the_owner_closes_an_adhoc_room(adhoc_room: Room, doctor: User, clerk: User) -> None:
    assert post(client_for(clerk), f"/api/coreading/rooms/{adhoc_room.uuid}/close/")[0] == 403
    status, room = post(client_for(doctor), f"/api/coreading/rooms/{adhoc_room.uuid}/close/")
    assert status == 200 and room["closed_at"]
    listed = client_for(doctor).get(f"/api/coreading/studies/{adhoc_room.study.study_instance_uid}/rooms/").json()
    assert listed == {"rooms": [], "openable": []}


def test_posts_need_the_csrf_token(study: Study, doctor: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(doctor, backend="institutions.backends.EmailOrUsernameBackend")
    response = client.post(f"/api/coreading/studies/{study.study_instance_uid}/rooms/", "{}", "application/json")
    assert response.status_code == 403
    assert not Room.objects.exists()


def test_bad_json_is_a_400(study: Study, doctor: User) -> None:
    response = client_for(doctor).post(
        f"/api/coreading/studies/{study.study_instance_uid}/rooms/", "{oops", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]


def names(consultation: Consultation) -> str:
    """Requester → target in English (the personas' language)."""
    return f"{consultation.requesting_institution.name_en} → {consultation.target_institution.name_en}"


def test_the_viewer_is_offered_the_consultation_rooms_nobody_opened_yet(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    url = f"/api/coreading/studies/{consultation.study.study_instance_uid}/rooms/"
    for person in (doctor, reader):
        listed = client_for(person).get(url).json()
        assert listed["rooms"] == []
        [offer] = listed["openable"]
        assert offer["consultation"] == str(consultation.uuid)
        assert offer["open"] == f"/api/coreading/consultations/{consultation.uuid}/room/"
        assert offer["status"] == "requested"
        assert offer["title"] == f"Reading request: {names(consultation)}"
    # POSTing to "open" opens it; from then on it is a room to join, no longer one to open.
    status, room = post(client_for(reader), listed["openable"][0]["open"])
    assert status == 201
    listed = client_for(doctor).get(url).json()
    assert [r["id"] for r in listed["rooms"]] == [room["id"]] and listed["openable"] == []


def test_ended_consultations_and_other_peoples_consultations_are_not_offered(
    consultation: Consultation, doctor: User, reader: User, other_clinic: Institution
) -> None:
    from institutions.models import Role
    from institutions.testing import make_member

    url = f"/api/coreading/studies/{consultation.study.study_instance_uid}/rooms/"
    bring_to(Consultation.Status.CANCELLED, consultation, doctor, reader)
    assert client_for(doctor).get(url).json()["openable"] == []
    stranger = make_member(other_clinic, Role.PHYSICIAN, username="elsewhere")
    assert client_for(stranger).get(url).status_code == 404
