"""An admin of one institution cannot touch another's people."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from institutions import permissions
from institutions.models import Institution, Invitation, Membership, Role, User
from institutions.testing import client_for, make_member, make_user

pytestmark = pytest.mark.django_db


def test_an_institution_admin_manages_their_own_members(clinic: Institution, clinic_admin: User, doctor: User) -> None:
    client = client_for(clinic_admin)
    page = client.get(f"/institutions/{clinic.code}/members/")
    assert page.status_code == 200
    assert "이의사" in page.content.decode()
    membership = Membership.objects.get(user=doctor)
    client.post(f"/institutions/{clinic.code}/members/{membership.pk}/toggle/")
    membership.refresh_from_db()
    assert membership.is_active is False


def test_an_admin_of_another_institution_gets_404_everywhere(
    clinic: Institution, other_clinic: Institution, outsider_admin: User, doctor: User, clinic_admin: User
) -> None:
    client = client_for(outsider_admin)
    membership = Membership.objects.get(user=doctor)
    assert client.get(f"/institutions/{clinic.code}/members/").status_code == 404
    assert (
        client.post(f"/institutions/{clinic.code}/members/", {"email": "a@b.org", "role": "reader"}).status_code == 404
    )
    assert client.post(f"/institutions/{clinic.code}/members/{membership.pk}/toggle/").status_code == 404
    assert (
        client.post(f"/institutions/{clinic.code}/people/{doctor.pk}/roles/", {"role": "institution_admin"}).status_code
        == 404
    )
    # Using their own institution's code with the other clinic's membership id does not work either.
    assert client.post(f"/institutions/{other_clinic.code}/members/{membership.pk}/toggle/").status_code == 404
    assert (
        client.post(f"/institutions/{other_clinic.code}/people/{doctor.pk}/roles/", {"role": "reader"}).status_code
        == 404
    )
    invitation = Invitation.objects.create(
        email="x@example.org",
        institution=clinic,
        role=Role.READER,
        token_hash="x" * 64,
        invited_by=clinic_admin,
        expires_at="2099-01-01T00:00:00Z",
    )
    assert client.post(f"/institutions/{other_clinic.code}/invitations/{invitation.pk}/revoke/").status_code == 404
    membership.refresh_from_db()
    invitation.refresh_from_db()
    assert membership.is_active is True
    assert invitation.revoked_at is None
    assert not Membership.objects.filter(user=doctor, role__in=["institution_admin", "reader"]).exists()


def test_an_unknown_institution_code_looks_the_same_as_a_forbidden_one(outsider_admin: User) -> None:
    assert client_for(outsider_admin).get("/institutions/99999999/members/").status_code == 404


def test_plain_members_and_platform_pages(clinic: Institution, doctor: User, platform_admin: User) -> None:
    doctor_client = client_for(doctor)
    assert doctor_client.get(f"/institutions/{clinic.code}/members/").status_code == 404
    assert doctor_client.get("/platform/institutions/").status_code == 404
    assert doctor_client.get("/platform/institutions/import/").status_code == 404
    admin_client = client_for(platform_admin)
    assert admin_client.get("/platform/institutions/").status_code == 200
    assert admin_client.get(f"/institutions/{clinic.code}/members/").status_code == 200


def test_role_rules_in_one_place(
    clinic: Institution, other_clinic: Institution, clinic_admin: User, doctor: User
) -> None:
    assert permissions.can_manage_members(clinic_admin, clinic)
    assert not permissions.can_manage_members(clinic_admin, other_clinic)
    assert not permissions.can_manage_members(doctor, clinic)
    assert permissions.has_role(doctor, clinic, Role.PHYSICIAN)
    assert not permissions.has_role(doctor, clinic, Role.READER)
    assert list(permissions.institutions_of(doctor)) == [clinic]


def test_a_membership_counts_only_while_user_membership_and_institution_are_active(clinic: Institution) -> None:
    user = make_member(clinic, Role.READER)
    assert permissions.can_act_for(user, clinic)
    clinic.is_active = False
    clinic.save()
    assert not permissions.can_act_for(user, clinic)
    assert not permissions.has_any_access(user)


def test_the_plain_membership_query_answers_as_the_rule_does(clinic: Institution, other_clinic: Institution) -> None:
    """``active_membership_rows`` (per request, plain SQL) and ``active_memberships`` (the ORM rule) agree."""

    def both(user: object) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        rule = sorted(permissions.active_memberships(user).values_list("institution_id", "role"))
        return sorted(permissions.active_membership_rows(user)), rule

    user = make_member(clinic, Role.READER)
    Membership.objects.create(user=user, institution=clinic, role=Role.PHYSICIAN)
    Membership.objects.create(user=user, institution=other_clinic, role=Role.CLINIC_STAFF)
    plain, rule = both(user)
    assert (
        plain
        == rule
        == sorted([(clinic.pk, Role.READER), (clinic.pk, Role.PHYSICIAN), (other_clinic.pk, Role.CLINIC_STAFF)])
    )
    Membership.objects.filter(user=user, role=Role.PHYSICIAN).update(is_active=False)
    other_clinic.is_active = False
    other_clinic.save()
    plain, rule = both(user)
    assert plain == rule == [(clinic.pk, Role.READER)]
    user.is_active = False
    user.save()
    assert both(user) == ([], [])
    assert both(AnonymousUser()) == ([], [])
    assert both(make_user()) == ([], [])


def test_an_admin_cannot_remove_their_own_admin_role(clinic: Institution, clinic_admin: User) -> None:
    membership = Membership.objects.get(user=clinic_admin)
    response = client_for(clinic_admin).post(
        f"/institutions/{clinic.code}/members/{membership.pk}/toggle/", follow=True
    )
    assert "cannot remove your own admin role" in response.content.decode()
    membership.refresh_from_db()
    assert membership.is_active


def test_adding_a_role_is_recorded(clinic: Institution, clinic_admin: User, doctor: User) -> None:
    from clinicnet.audit.models import AuditEvent

    client_for(clinic_admin).post(f"/institutions/{clinic.code}/people/{doctor.pk}/roles/", {"role": "reader"})
    assert Membership.objects.filter(user=doctor, role=Role.READER).exists()
    event = AuditEvent.objects.get(action="membership.grant")
    assert event.actor == clinic_admin
    assert event.detail == {"user": "doctor", "role": "reader"}
