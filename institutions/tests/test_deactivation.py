"""Deactivating a user or an institution cuts access at once."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session

from clinicnet.asgi import application
from institutions import services
from institutions.models import Institution, Membership, User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db


def test_a_deactivated_user_is_signed_out_on_the_next_request(doctor: User, platform_admin: User) -> None:
    client = client_for(doctor)
    assert client.get("/").status_code == 200
    assert Session.objects.count() == 1
    services.user_set_active(request=None, actor=platform_admin, user=doctor, active=False)
    assert Session.objects.count() == 0
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_deactivating_an_institution_signs_out_members_with_no_other_institution(
    clinic: Institution, other_clinic: Institution, doctor: User, platform_admin: User
) -> None:
    from institutions.models import Role

    both = User.objects.create(username="both", email="both@example.org", language="en")
    Membership.objects.create(user=both, institution=clinic, role=Role.PHYSICIAN)
    Membership.objects.create(user=both, institution=other_clinic, role=Role.PHYSICIAN)
    doctor_client, both_client = client_for(doctor), client_for(both)

    client_for(platform_admin).post(f"/platform/institutions/{clinic.code}/toggle/")
    clinic.refresh_from_db()
    assert clinic.is_active is False
    assert doctor_client.get("/").status_code == 302
    # Someone who also works elsewhere stays in, but no longer acts for the clinic.
    page = both_client.get("/")
    assert page.status_code == 200
    assert clinic.code not in page.content.decode()
    assert other_clinic.code in page.content.decode()


def test_removing_the_last_role_signs_the_person_out(clinic: Institution, clinic_admin: User, clerk: User) -> None:
    clerk_client = client_for(clerk)
    membership = Membership.objects.get(user=clerk)
    client_for(clinic_admin).post(f"/institutions/{clinic.code}/members/{membership.pk}/toggle/")
    assert clerk_client.get("/").status_code == 302


def test_the_api_answers_401_once_access_is_gone(clinic: Institution, doctor: User) -> None:
    client = client_for(doctor)
    Membership.objects.filter(user=doctor).update(is_active=False)
    assert client.get("/api/anything").status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_open_websockets_close_when_the_account_is_deactivated(doctor: User, platform_admin: User) -> None:
    from asgiref.sync import sync_to_async

    client = await sync_to_async(client_for)(doctor)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/events/", headers=[(b"cookie", cookie), (b"origin", b"http://localhost")]
    )
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"

    await sync_to_async(services.user_set_active)(request=None, actor=platform_admin, user=doctor, active=False)
    closed = await communicator.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4403}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_anonymous_websockets_are_refused() -> None:
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=[(b"origin", b"http://localhost")])
    connected, code = await communicator.connect()
    assert not connected
    assert code == 4403
    await communicator.disconnect()
