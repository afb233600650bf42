"""An open consultation lets the target's readers see exactly the shared studies, until the grace period ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http import Http404
from django.utils import timezone

from consult.models import Consultation
from consult.tests.conftest import request_reading
from consult.tests.helpers import bring_to
from imaging.access import access_study, visible_studies
from imaging.models import Study, StudyGrant
from imaging.testing import make_study
from institutions.models import Institution, User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db
Status = Consultation.Status


def _sees(user: User, study: Study) -> bool:
    return visible_studies(user).filter(pk=study.pk).exists()


def test_the_target_readers_see_the_study_while_the_consultation_is_open(
    study: Study, doctor: User, reader: User, health_center: Institution, hc_admin: User, other_reader: User
) -> None:
    assert not _sees(reader, study)
    consultation = request_reading(study, doctor, health_center)
    assert _sees(reader, study)
    assert access_study(reader, study.study_instance_uid) == study
    # Grants are for readers only, and only at the target institution.
    assert not _sees(hc_admin, study)
    assert not _sees(other_reader, study)
    grant = consultation.grants.get()
    assert (grant.study, grant.institution) == (study, health_center)
    assert grant.reason == f"consultation {consultation.uuid}"
    assert client_for(reader).get(f"/studies/{study.study_instance_uid}/viewer/").status_code == 200


def test_the_patients_other_studies_stay_private_unless_attached(
    clinic: Institution, study: Study, doctor: User, reader: User, health_center: Institution
) -> None:
    other = make_study(clinic, "MR_small.dcm", actor=doctor)
    Study.objects.filter(pk=other.pk).update(patient=study.patient)  # the same patient's earlier MR
    request_reading(study, doctor, health_center)
    assert _sees(reader, study)
    assert not _sees(reader, other)
    with pytest.raises(Http404):
        access_study(reader, other.study_instance_uid)


def test_attached_prior_studies_are_shared_too(
    clinic: Institution, study: Study, doctor: User, reader: User, health_center: Institution
) -> None:
    prior = make_study(clinic, "MR_small.dcm", actor=doctor)
    Study.objects.filter(pk=prior.pk).update(patient=study.patient)  # make it the same patient's
    prior.refresh_from_db()
    consultation = request_reading(study, doctor, health_center, related_studies=[prior])
    assert _sees(reader, prior)
    assert consultation.grants.count() == 2


@pytest.mark.parametrize("end_status", [Status.CLOSED, Status.DECLINED, Status.CANCELLED])
def test_closing_declining_or_cancelling_ends_the_grant_after_the_grace_period(
    consultation: Consultation, study: Study, doctor: User, reader: User, settings, end_status: str
) -> None:
    settings.CONSULT_GRANT_GRACE_MINUTES = 30
    before = timezone.now()
    bring_to(end_status, consultation, doctor, reader)
    grant = consultation.grants.get()
    assert grant.revoked_at is None
    assert before + timedelta(minutes=30) <= grant.expires_at <= timezone.now() + timedelta(minutes=30)
    # Still inside the grace period: the reader can finish up.
    assert _sees(reader, study)
    # Past it: gone, although nobody touched the grant again.
    StudyGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert not _sees(reader, study)
    assert client_for(reader).get(f"/studies/{study.study_instance_uid}/viewer/").status_code == 404
    # The requester keeps their own study, of course.
    assert _sees(doctor, study)


def test_with_no_grace_period_access_ends_at_once(
    consultation: Consultation, study: Study, doctor: User, reader: User, settings
) -> None:
    settings.CONSULT_GRANT_GRACE_MINUTES = 0
    bring_to(Status.CANCELLED, consultation, doctor, reader)
    assert consultation.grants.get().revoked_at is not None
    assert not _sees(reader, study)


def test_one_consultation_ending_leaves_another_open_ones_grant(
    study: Study, doctor: User, reader: User, health_center: Institution, settings
) -> None:
    settings.CONSULT_GRANT_GRACE_MINUTES = 0
    first = request_reading(study, doctor, health_center)
    request_reading(study, doctor, health_center, clinical_question="두 번째 의뢰")
    bring_to(Status.CANCELLED, first, doctor, reader)
    assert _sees(reader, study)


def test_the_grace_period_comes_from_the_environment(monkeypatch) -> None:
    import importlib

    import clinicnet.settings as project_settings

    monkeypatch.setenv("CONSULT_GRANT_GRACE_MINUTES", "5")
    reloaded = importlib.reload(project_settings)
    try:
        assert reloaded.CONSULT_GRANT_GRACE_MINUTES == 5
    finally:
        monkeypatch.delenv("CONSULT_GRANT_GRACE_MINUTES")
        importlib.reload(project_settings)
