"""Who sees which study: owners, grants to readers, nobody else (404)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from imaging import access, services
from imaging.models import Study, StudyGrant
from imaging.testing import make_study
from institutions.models import Institution, Membership, Role, User
from institutions.testing import client_for, make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(clinic: Institution, doctor: User) -> Study:
    return make_study(clinic, "CT_small.dcm", actor=doctor)


def test_members_of_the_owner_see_the_study(study: Study, doctor: User, clerk: User) -> None:
    assert access.access_study(doctor, study.study_instance_uid) == study
    assert access.access_study(clerk, study.study_instance_uid) == study


def test_outsiders_and_readers_without_a_grant_get_404(study: Study, outsider: User, reader: User) -> None:
    for user in (outsider, reader):
        with pytest.raises(Http404):
            access.access_study(user, study.study_instance_uid)
    with pytest.raises(Http404):
        access.access_study(outsider, "1.2.3.4.5")


def test_a_grant_lets_the_readers_of_that_institution_see_it(
    study: Study, reader: User, health_center: Institution, doctor: User
) -> None:
    staff = make_member(health_center, Role.CLINIC_STAFF)
    services.study_grant(study=study, institution=health_center, reason="consultation", granted_by=doctor)
    assert access.access_study(reader, study.study_instance_uid) == study
    # Only readers: other staff of the health center do not see granted studies.
    with pytest.raises(Http404):
        access.access_study(staff, study.study_instance_uid)


def test_an_expired_or_revoked_grant_shows_nothing(study: Study, reader: User, health_center: Institution) -> None:
    grant = services.study_grant(study=study, institution=health_center, reason="x", granted_by=None)
    services.study_grant_end(grant=grant)
    assert not access.visible_studies(reader).exists()
    StudyGrant.objects.create(
        study=study, institution=health_center, reason="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert not access.visible_studies(reader).exists()


def test_a_grace_period_keeps_access_until_it_ends(study: Study, reader: User, health_center: Institution) -> None:
    grant = services.study_grant(study=study, institution=health_center, reason="x", granted_by=None)
    services.study_grant_end(grant=grant, at=timezone.now() + timedelta(minutes=30))
    assert access.visible_studies(reader).exists()
    StudyGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not access.visible_studies(reader).exists()


def test_a_grant_to_one_study_does_not_open_the_patients_other_studies(
    clinic: Institution, study: Study, reader: User, health_center: Institution
) -> None:
    other = make_study(clinic, "MR_small.dcm")
    services.study_grant(study=study, institution=health_center, reason="x", granted_by=None)
    assert list(access.visible_studies(reader)) == [study]
    with pytest.raises(Http404):
        access.access_study(reader, other.study_instance_uid)


def test_deactivation_hides_studies_at_once(study: Study, doctor: User, clinic: Institution) -> None:
    Membership.objects.filter(user=doctor).update(is_active=False)
    assert not access.visible_studies(doctor).exists()


def test_the_own_copy_wins_when_two_institutions_hold_the_same_uid(
    clinic: Institution, other_clinic: Institution, study: Study, outsider: User, health_center: Institution
) -> None:
    theirs = make_study(other_clinic, "CT_small.dcm")
    assert access.access_study(outsider, study.study_instance_uid) == theirs


@pytest.mark.parametrize("url", ["/studies/{uid}/", "/studies/{uid}/viewer/", "/api/v1/studies/{uid}/"])
def test_pages_answer_404_for_other_tenants_and_unknown_uids(
    url: str, study: Study, outsider: User, doctor: User
) -> None:
    client = client_for(outsider)
    assert client.get(url.format(uid=study.study_instance_uid)).status_code == 404
    assert client.get(url.format(uid="1.2.3.999")).status_code == 404
    assert client_for(doctor).get(url.format(uid=study.study_instance_uid)).status_code == 200


def test_the_study_list_shows_only_visible_studies(
    study: Study, clinic: Institution, other_clinic: Institution, outsider: User, doctor: User
) -> None:
    make_study(other_clinic, "MR_small.dcm")
    mine = client_for(doctor).get("/studies/").content.decode()
    assert study.study_instance_uid in mine
    theirs = client_for(outsider).get("/studies/").content.decode()
    assert study.study_instance_uid not in theirs
    assert "MR1" in theirs or "MRI" in theirs or "MR" in theirs
