"""Notifications reach the right people only: live over /ws/events/, as rows, and by e-mail."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core import mail

from clinicnet.asgi import application
from consult import services
from consult.models import Consultation, Notification
from consult.tests.conftest import request_reading
from consult.tests.helpers import write_and_sign
from imaging.models import Study
from institutions.models import Institution, User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db


async def _connect(user: User) -> WebsocketCommunicator:
    client = await sync_to_async(client_for)(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/events/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    return communicator


async def _events(communicator: WebsocketCommunicator) -> list[dict[str, Any]]:
    """Everything that arrives until the socket is quiet for a moment."""
    events = []
    while not await communicator.receive_nothing(timeout=1.0):
        events.append(await communicator.receive_json_from())
    return events


@pytest.mark.django_db(transaction=True)
async def test_an_emergency_request_alerts_the_target_readers_live_and_nobody_else(
    study: Study,
    doctor: User,
    clerk: User,
    reader: User,
    second_reader: User,
    hc_admin: User,
    outsider: User,
    other_reader: User,
    health_center: Institution,
) -> None:
    people = {"doctor": doctor, "clerk": clerk, "reader": reader, "second_reader": second_reader}
    people |= {"hc_admin": hc_admin, "outsider": outsider, "other_reader": other_reader}
    sockets = {name: await _connect(user) for name, user in people.items()}
    try:
        consultation = await sync_to_async(request_reading)(
            study, doctor, health_center, priority=Study.Priority.EMERGENCY
        )
        received = {name: await _events(socket) for name, socket in sockets.items()}
    finally:
        for socket in sockets.values():
            await socket.disconnect()

    for name in ("reader", "second_reader"):
        notifications = [e for e in received[name] if e["type"] == "notification"]
        assert len(notifications) == 1, name
        event = notifications[0]
        assert event["op"] == "created"
        assert event["kind"] == "consultation.new"
        assert event["emergency"] is True
        assert event["unread"] == 1
        assert event["consultation"] == str(consultation.uuid)
        assert event["url"] == f"/consultations/{consultation.uuid}/"
        assert event["text"].startswith("EMERGENCY CT reading request from")
    # The requesting clinic hears that the consultation changed (worklists refresh), not an alert.
    for name in ("doctor", "clerk"):
        assert [e["type"] for e in received[name]] == ["consultation"], name
    # Not readers there, another clinic, another health center: nothing at all.
    for name in ("hc_admin", "outsider", "other_reader"):
        assert received[name] == [], name


@pytest.mark.django_db(transaction=True)
async def test_accepting_commenting_and_reporting_notify_the_requester_live(
    consultation: Consultation, doctor: User, clerk: User, reader: User
) -> None:
    doctor_socket = await _connect(doctor)
    clerk_socket = await _connect(clerk)
    try:
        await sync_to_async(services.consultation_accept)(consultation=consultation, actor=reader)
        await sync_to_async(services.comment_add)(consultation=consultation, actor=reader, body="과거 영상 있나요?")
        await sync_to_async(write_and_sign)(consultation, reader)
        doctor_events = await _events(doctor_socket)
        clerk_events = await _events(clerk_socket)
    finally:
        await doctor_socket.disconnect()
        await clerk_socket.disconnect()
    kinds = [e["kind"] for e in doctor_events if e["type"] == "notification"]
    assert kinds == ["consultation.accepted", "consultation.commented", "consultation.reported"]
    assert [e["unread"] for e in doctor_events if e["type"] == "notification"] == [1, 2, 3]
    # The clerk sees the consultation change but the notifications are the requesting doctor's.
    assert [e for e in clerk_events if e["type"] == "notification"] == []
    assert {e["status"] for e in clerk_events if e["type"] == "consultation"} >= {"accepted", "reading", "reported"}


@pytest.mark.django_db(transaction=True)
async def test_a_requester_comment_reaches_only_the_accepting_reader(
    consultation: Consultation, doctor: User, reader: User, second_reader: User
) -> None:
    await sync_to_async(services.consultation_accept)(consultation=consultation, actor=reader)
    reader_socket = await _connect(reader)
    second_socket = await _connect(second_reader)
    try:
        await sync_to_async(services.comment_add)(consultation=consultation, actor=doctor, body="흡연력 20갑년입니다.")
        reader_events = await _events(reader_socket)
        second_events = await _events(second_socket)
    finally:
        await reader_socket.disconnect()
        await second_socket.disconnect()
    assert [e["kind"] for e in reader_events if e["type"] == "notification"] == ["consultation.commented"]
    assert second_events == []  # a comment is not a consultation change


def test_a_named_reader_is_the_only_one_notified_of_a_routine_request(
    study: Study, doctor: User, reader: User, second_reader: User, health_center: Institution
) -> None:
    request_reading(study, doctor, health_center, named_reader=second_reader)
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["reader2"]


def test_emails_go_to_the_recipients_in_their_language_without_patient_data(
    study: Study, doctor: User, reader: User, second_reader: User, health_center: Institution
) -> None:
    reader.language = "ko"
    reader.save(update_fields=["language"])
    request_reading(study, doctor, health_center, priority=Study.Priority.URGENT)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([reader.email, second_reader.email])
    korean = next(m for m in mail.outbox if m.to == [reader.email])
    english = next(m for m in mail.outbox if m.to == [second_reader.email])
    assert english.subject == f"[ClinicNet] Urgent CT reading request from {study.institution.name_en}"
    assert "긴급" in korean.subject
    patient = study.patient
    for message in mail.outbox:
        assert patient.patient_id not in message.body + message.subject
        assert "CompressedSamples" not in message.body + message.subject  # the patient's name
        assert "/consultations/" in message.body


def test_the_notification_list_marks_read_and_the_page_clears_its_own(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    client = client_for(doctor)
    assert client.get("/notifications/unread/").json() == {"unread": 1}
    page = client.get("/").content.decode()
    assert 'data-consult-unread aria-label="unread" >1</span>' in page or ">1</span>" in page
    # Opening the consultation reads its notifications.
    client.get(f"/consultations/{consultation.uuid}/")
    assert client.get("/notifications/unread/").json() == {"unread": 0}
    services.comment_add(consultation=consultation, actor=reader, body="확인 부탁드립니다")
    assert client.get("/notifications/unread/").json() == {"unread": 1}
    assert client.post("/notifications/read/").status_code == 302
    assert client.get("/notifications/unread/").json() == {"unread": 0}
    assert Notification.objects.filter(user=doctor, read_at__isnull=True).count() == 0
