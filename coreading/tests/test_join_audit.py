"""Entering a room is audited once per person and room a window, not on every reconnect."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinicnet.audit.models import AuditEvent
from coreading import services
from coreading.models import Participant, Room
from institutions.models import User

pytestmark = pytest.mark.django_db


def joins(room: Room) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="coreading.join", object_id=str(room.uuid)))


def test_reconnecting_within_the_window_is_covered_by_the_first_row(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    for _reconnect in range(3):
        services.enter(clerk, str(adhoc_room.uuid))
    services.enter(doctor, str(adhoc_room.uuid))
    rows = joins(adhoc_room)
    assert sorted(row.actor_id for row in rows) == sorted([clerk.pk, doctor.pk])
    assert all(row.detail["window"] == 300 for row in rows)


def test_a_repeated_entry_writes_nothing_to_the_database(adhoc_room: Room, clerk: User) -> None:
    services.enter(clerk, str(adhoc_room.uuid))
    with CaptureQueriesContext(connection) as queries:
        services.enter(clerk, str(adhoc_room.uuid))
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []


def test_the_first_entry_into_a_consultation_room_adds_the_participant_once(
    consultation_room: Room, reader: User
) -> None:
    for _reconnect in range(2):
        services.enter(reader, str(consultation_room.uuid))
    assert Participant.objects.filter(room=consultation_room, user=reader).count() == 1


def test_with_no_window_every_entry_is_recorded(settings: object, adhoc_room: Room, clerk: User) -> None:
    settings.COREADING_JOIN_AUDIT_SECONDS = 0  # type: ignore[attr-defined]
    for _reconnect in range(2):
        services.enter(clerk, str(adhoc_room.uuid))
    assert len(joins(adhoc_room)) == 2


def test_every_entry_is_recorded_when_the_cache_is_down(
    monkeypatch: pytest.MonkeyPatch, adhoc_room: Room, clerk: User
) -> None:
    def unreachable(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(services.cache, "add", unreachable)
    for _reconnect in range(2):
        services.enter(clerk, str(adhoc_room.uuid))
    assert len(joins(adhoc_room)) == 2
