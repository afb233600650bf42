from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from clinicnet.audit.models import AuditEvent
from institutions.models import Institution, Invitation, Membership, Role, User
from institutions.testing import TEST_PASSWORD, anonymous_client, client_for, sign_in

pytestmark = pytest.mark.django_db


def invite(client: Client, institution: Institution, email: str, role: str = Role.READER) -> str:
    response = client.post(f"/institutions/{institution.code}/members/", {"email": email, "role": role}, follow=True)
    assert response.status_code == 200
    match = re.search(r"/invitations/([\w-]+)/", response.content.decode())
    assert match, response.content.decode()
    return match.group(1)


def accept(token: str, username: str = "newreader", password: str = "Ultrasound-Reader-2026") -> Client:
    client = anonymous_client()
    response = client.post(
        f"/invitations/{token}/",
        {"username": username, "name": "신판독", "password1": password, "password2": password},
    )
    assert response.status_code == 302, response.content.decode()
    return client


def test_an_institution_admin_invites_staff_who_joins_and_signs_in(
    clinic: Institution, clinic_admin: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        token = invite(client_for(clinic_admin), clinic, "New.Reader@Example.org", Role.PHYSICIAN)
    assert len(mail.outbox) == 1
    assert token in mail.outbox[0].body
    assert mail.outbox[0].to == ["new.reader@example.org"]

    client = accept(token)
    user = User.objects.get(username="newreader")
    assert user.email == "new.reader@example.org"
    assert Membership.objects.filter(user=user, institution=clinic, role=Role.PHYSICIAN, is_active=True).exists()
    # Accepting signs the new member in.
    assert client.get("/").status_code == 200
    # And they can sign in again later, by e-mail as well.
    assert sign_in(anonymous_client(), "new.reader@example.org", "Ultrasound-Reader-2026")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"invitation.create", "invitation.accept", "membership.grant", "user.create"} <= actions


def test_a_platform_admin_invites_an_institution_admin_who_invites_a_reader(
    platform_admin: User, health_center: Institution
) -> None:
    token = invite(client_for(platform_admin), health_center, "hc-admin@example.org", Role.INSTITUTION_ADMIN)
    admin_client = accept(token, username="hcadmin")
    token = invite(admin_client, health_center, "reader@example.org", Role.READER)
    accept(token, username="reader2")
    assert sign_in(anonymous_client(), "reader2", "Ultrasound-Reader-2026")
    reader = User.objects.get(username="reader2")
    assert Membership.objects.get(user=reader).role == Role.READER


def test_an_invitation_works_only_once(clinic: Institution, clinic_admin: User) -> None:
    token = invite(client_for(clinic_admin), clinic, "once@example.org")
    accept(token)
    response = anonymous_client().post(
        f"/invitations/{token}/",
        {"username": "second", "name": "둘째", "password1": "Another-Secret-77", "password2": "Another-Secret-77"},
    )
    assert response.status_code == 410
    assert "already been used" in response.content.decode()
    assert not User.objects.filter(username="second").exists()


def test_an_expired_invitation_is_refused(clinic: Institution, clinic_admin: User) -> None:
    token = invite(client_for(clinic_admin), clinic, "late@example.org")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = anonymous_client().get(f"/invitations/{token}/")
    assert response.status_code == 410
    assert "expired" in response.content.decode()


def test_a_withdrawn_invitation_is_refused(clinic: Institution, clinic_admin: User) -> None:
    admin = client_for(clinic_admin)
    token = invite(admin, clinic, "withdrawn@example.org")
    invitation = Invitation.objects.get()
    admin.post(f"/institutions/{clinic.code}/invitations/{invitation.pk}/revoke/")
    assert anonymous_client().get(f"/invitations/{token}/").status_code == 410


def test_an_unknown_token_is_404() -> None:
    assert anonymous_client().get("/invitations/not-a-token/").status_code == 404


def test_a_weak_password_is_refused_with_a_reason(clinic: Institution, clinic_admin: User) -> None:
    token = invite(client_for(clinic_admin), clinic, "weak@example.org")
    response = anonymous_client().post(
        f"/invitations/{token}/", {"username": "weak", "name": "약함", "password1": "1234", "password2": "1234"}
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    assert Invitation.objects.get().accepted_at is None


def test_an_existing_account_accepts_after_signing_in(clinic: Institution, clinic_admin: User, reader: User) -> None:
    token = invite(client_for(clinic_admin), clinic, reader.email, Role.READER)
    page = anonymous_client().get(f"/invitations/{token}/")
    assert "Sign in, then open this link again" in page.content.decode()
    response = client_for(reader).post(f"/invitations/{token}/")
    assert response.status_code == 302
    assert Membership.objects.filter(user=reader, institution=clinic, role=Role.READER).exists()


def test_someone_else_cannot_accept_an_invitation_meant_for_another_address(
    clinic: Institution, clinic_admin: User, outsider: User
) -> None:
    token = invite(client_for(clinic_admin), clinic, "intended@example.org")
    response = client_for(outsider).post(f"/invitations/{token}/", follow=True)
    assert "This invitation is for intended@example.org" in response.content.decode()
    assert not Membership.objects.filter(user=outsider, institution=clinic).exists()
    assert Invitation.objects.get().accepted_at is None


def test_a_new_invitation_replaces_the_pending_one(clinic: Institution, clinic_admin: User) -> None:
    admin = client_for(clinic_admin)
    first = invite(admin, clinic, "twice@example.org")
    invite(admin, clinic, "twice@example.org")
    assert anonymous_client().get(f"/invitations/{first}/").status_code == 410


def test_members_cannot_invite(clinic: Institution, doctor: User) -> None:
    response = client_for(doctor).post(
        f"/institutions/{clinic.code}/members/", {"email": "x@example.org", "role": "reader"}
    )
    assert response.status_code == 404
    assert not Invitation.objects.exists()


def test_a_signed_in_user_can_log_in_with_username_or_email(doctor: User) -> None:
    assert sign_in(anonymous_client(), "doctor", TEST_PASSWORD)
    assert sign_in(anonymous_client(), "DOCTOR@example.org", TEST_PASSWORD)
    assert not sign_in(anonymous_client(), "doctor", "wrong")
