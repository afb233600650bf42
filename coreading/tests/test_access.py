"""Who gets into a room, and that access ends at once when it ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from consult import services as consult_services
from consult.models import Consultation
from coreading import protocol, services
from coreading.models import Room
from coreading.testing import Participant
from imaging.models import Study, StudyGrant
from institutions import services as institution_services
from institutions.models import Institution, Membership, User

pytestmark = pytest.mark.django_db(transaction=True)


async def refused_with(user: User | None, room_id: str) -> int | None:
    participant = await Participant.connect(user, room_id)
    try:
        return await participant.closed_with()
    finally:
        await participant.disconnect()


async def test_the_requester_and_the_target_reader_may_enter_a_consultation_room(
    consultation_room: Room, doctor: User, clerk: User, reader: User
) -> None:
    for user in (doctor, clerk, reader):
        participant = await Participant.connect(user, str(consultation_room.uuid))
        snapshot = await participant.join()
        assert snapshot["data"]["room"]["consultation"] == str(consultation_room.consultation.uuid)
        await participant.disconnect()


async def test_strangers_unknown_rooms_and_anonymous_visitors_look_alike(
    consultation_room: Room, adhoc_room: Room, outsider: User, reader: User, doctor: User
) -> None:
    assert await refused_with(outsider, str(consultation_room.uuid)) == protocol.CLOSE_NOT_FOUND
    assert await refused_with(outsider, str(adhoc_room.uuid)) == protocol.CLOSE_NOT_FOUND
    # The reader may see the study through the consultation's grant, but was not invited.
    assert await refused_with(reader, str(adhoc_room.uuid)) == protocol.CLOSE_NOT_FOUND
    assert await refused_with(doctor, "00000000-0000-0000-0000-000000000000") == protocol.CLOSE_NOT_FOUND
    assert await refused_with(doctor, "not-a-room") == protocol.CLOSE_NOT_FOUND
    assert await refused_with(None, str(adhoc_room.uuid)) == protocol.CLOSE_NOT_FOUND


async def test_a_reader_of_another_health_center_never_gets_in(
    consultation_room: Room, health_center: Institution
) -> None:
    from institutions.models import Role
    from institutions.testing import make_institution, make_member

    elsewhere = await sync_to_async(make_institution)(kind=Institution.Kind.HEALTH_CENTER)
    stranger = await sync_to_async(make_member)(elsewhere, Role.READER, username="farreader")
    assert await refused_with(stranger, str(consultation_room.uuid)) == protocol.CLOSE_NOT_FOUND


async def test_a_closed_room_refuses_with_4410(adhoc_room: Room, doctor: User) -> None:
    await sync_to_async(services.room_close_by_owner)(room=adhoc_room, actor=doctor)
    assert await refused_with(doctor, str(adhoc_room.uuid)) == protocol.CLOSE_ROOM_CLOSED


async def test_cancelling_the_consultation_closes_the_room_and_disconnects_everyone(
    consultation_room: Room, consultation: Consultation, doctor: User, reader: User
) -> None:
    people = [await Participant.connect(user, str(consultation_room.uuid)) for user in (doctor, reader)]
    for participant in people:
        await participant.join()
    await sync_to_async(consult_services.consultation_cancel)(consultation=consultation, actor=doctor)
    for participant in people:
        closed = await participant.expect("room.closed")
        assert closed["data"]["reason"] == "consultation"
        assert await participant.closed_with() == protocol.CLOSE_ROOM_CLOSED
        await participant.disconnect()
    room = await Room.objects.aget(pk=consultation_room.pk)
    assert room.closed_at is not None
    assert await refused_with(reader, str(consultation_room.uuid)) == protocol.CLOSE_ROOM_CLOSED


async def test_declining_the_consultation_closes_the_room(
    consultation_room: Room, consultation: Consultation, reader: User
) -> None:
    participant = await Participant.connect(reader, str(consultation_room.uuid))
    await participant.join()
    await sync_to_async(consult_services.consultation_decline)(consultation=consultation, actor=reader, reason="흐림")
    assert await participant.closed_with() == protocol.CLOSE_ROOM_CLOSED
    await participant.disconnect()


async def test_a_deactivated_user_is_disconnected_at_once_and_the_others_see_them_leave(
    adhoc_room: Room, doctor: User, clerk: User, platform_admin: User
) -> None:
    owner = await Participant.connect(doctor, str(adhoc_room.uuid))
    await owner.join()
    guest = await Participant.connect(clerk, str(adhoc_room.uuid))
    snapshot = await guest.join()
    guest_conn = snapshot["data"]["you"]["conn"]
    await sync_to_async(institution_services.user_set_active)(
        request=None, actor=platform_admin, user=clerk, active=False
    )
    assert await guest.closed_with() == protocol.CLOSE_ACCESS_ENDED
    left = await owner.expect("presence.left", conn=guest_conn)
    assert left["data"]["reason"] == "access"
    await guest.disconnect()
    await owner.disconnect()


async def test_a_removed_participant_is_disconnected_and_cannot_come_back(
    adhoc_room: Room, doctor: User, clerk: User
) -> None:
    guest = await Participant.connect(clerk, str(adhoc_room.uuid))
    await guest.join()
    await sync_to_async(services.participant_remove)(room=adhoc_room, actor=doctor, user_id=clerk.pk)
    assert await guest.closed_with() == protocol.CLOSE_ACCESS_ENDED
    await guest.disconnect()
    assert await refused_with(clerk, str(adhoc_room.uuid)) == protocol.CLOSE_NOT_FOUND


async def test_losing_the_role_disconnects(adhoc_room: Room, doctor: User, clerk: User, clinic_admin: User) -> None:
    guest = await Participant.connect(clerk, str(adhoc_room.uuid))
    await guest.join()
    membership = await Membership.objects.select_related("institution", "user").aget(user=clerk)
    await sync_to_async(institution_services.membership_set_active)(
        request=None, actor=clinic_admin, membership=membership, active=False
    )
    assert await guest.closed_with() == protocol.CLOSE_ACCESS_ENDED
    await guest.disconnect()


async def test_a_grant_that_expires_by_time_is_caught_by_the_periodic_recheck(
    settings: object, study: Study, doctor: User, reader: User, health_center: Institution
) -> None:
    settings.COREADING_HEARTBEAT_SECONDS = 0.1  # type: ignore[attr-defined]
    settings.COREADING_RECHECK_SECONDS = 0  # type: ignore[attr-defined]
    grant = await StudyGrant.objects.acreate(study=study, institution=health_center, reason="second opinion")
    room = await sync_to_async(services.room_create)(actor=doctor, study=study)
    await sync_to_async(services.participant_invite)(room=room, actor=doctor, who=reader.email)
    participant = await Participant.connect(reader, str(room.uuid))
    await participant.join()
    # Still allowed: several re-checks pass and the socket stays open.
    assert all(message["type"] != "websocket.close" for message in await participant.drain(quiet=0.5))
    # The grant runs out without anyone sending access.changed.
    await StudyGrant.objects.filter(pk=grant.pk).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert await participant.closed_with() == protocol.CLOSE_ACCESS_ENDED
    await participant.disconnect()


async def test_no_join_within_the_timeout_closes_with_4408(settings: object, adhoc_room: Room, doctor: User) -> None:
    settings.COREADING_JOIN_TIMEOUT = 0.2  # type: ignore[attr-defined]
    participant = await Participant.connect(doctor, str(adhoc_room.uuid))
    assert await participant.closed_with() == protocol.CLOSE_JOIN_TIMEOUT
    await participant.disconnect()
