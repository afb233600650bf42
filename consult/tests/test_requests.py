"""Requesting a reading, due times, and the worklists' order and counters."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from consult import selectors, services
from consult.models import Consultation
from consult.tests.conftest import request_reading
from imaging.models import Series, Study
from imaging.testing import make_study
from institutions.models import Institution, User
from institutions.testing import client_for, make_institution

pytestmark = pytest.mark.django_db


def test_a_clinic_member_requests_a_reading_through_the_form(
    study: Study, clerk: User, reader: User, health_center: Institution
) -> None:
    client = client_for(clerk)
    page = client.get(f"/consultations/new/{study.study_instance_uid}/")
    assert page.status_code == 200
    assert page.context["form"]["target"].initial == health_center.pk  # the clinic's own health center
    series = list(study.series.values_list("pk", flat=True))
    assert page.context["form"]["series"].initial == series  # all series by default
    response = client.post(
        f"/consultations/new/{study.study_instance_uid}/",
        {
            "target": health_center.pk,
            "named_reader": reader.pk,
            "priority": Study.Priority.URGENT,
            "clinical_question": "폐렴 소견이 있습니까?",
            "clinical_history": "3일간 발열",
            "series": series,
        },
    )
    consultation = Consultation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/consultations/{consultation.uuid}/"
    assert consultation.requested_by == clerk
    assert consultation.requesting_institution == study.institution
    assert consultation.named_reader == reader
    assert consultation.status == Consultation.Status.REQUESTED
    assert list(consultation.series.values_list("pk", flat=True)) == series


def test_bad_requests_are_answered_with_what_to_fix(study: Study, doctor: User, other_clinic: Institution) -> None:
    response = client_for(doctor).post(
        f"/consultations/new/{study.study_instance_uid}/", {"target": other_clinic.pk, "priority": 7}
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) >= {"target", "priority", "clinical_question", "series"}
    assert not Consultation.objects.exists()


def test_targets_are_health_centers_and_institutions_that_accept_requests(
    study: Study, health_center: Institution, other_clinic: Institution
) -> None:
    hospital = make_institution(kind=Institution.Kind.HOSPITAL, health_center=health_center)
    Institution.objects.filter(pk=hospital.pk).update(accepts_consultations=True)
    targets = set(services.target_institutions(study))
    assert health_center in targets and hospital in targets
    assert other_clinic not in targets and study.institution not in targets


def test_the_named_reader_must_read_at_the_target(
    study: Study, doctor: User, health_center: Institution, other_reader: User, clerk: User
) -> None:
    for person in (other_reader, clerk):
        with pytest.raises(ValidationError) as raised:
            request_reading(study, doctor, health_center, named_reader=person)
        assert "named_reader" in raised.value.message_dict


def test_a_grantee_cannot_forward_a_study_it_does_not_own(
    consultation: Consultation, reader: User, other_health_center: Institution
) -> None:
    with pytest.raises(PermissionDenied):
        request_reading(consultation.study, reader, other_health_center)
    assert client_for(reader).get(f"/consultations/new/{consultation.study.study_instance_uid}/").status_code == 404


def test_series_of_another_study_cannot_be_attached(
    clinic: Institution, study: Study, doctor: User, health_center: Institution
) -> None:
    other = make_study(clinic, "MR_small.dcm", actor=doctor)
    with pytest.raises(ValidationError) as raised:
        request_reading(study, doctor, health_center, series=list(Series.objects.filter(study=other)))
    assert "series" in raised.value.message_dict


@pytest.mark.parametrize(("priority", "hours"), [(0, 72), (1, 24), (2, 1)])
def test_due_times_follow_the_priority(
    study: Study, doctor: User, health_center: Institution, priority: int, hours: int
) -> None:
    consultation = request_reading(study, doctor, health_center, priority=priority)
    assert consultation.due_at - consultation.created_at == pytest.approx(
        timedelta(hours=hours), abs=timedelta(seconds=5)
    )


def test_due_times_are_settings(study: Study, doctor: User, health_center: Institution, settings) -> None:
    settings.CONSULT_DUE_HOURS = {"emergency": 2, "urgent": 12, "routine": 48}
    consultation = request_reading(study, doctor, health_center, priority=Study.Priority.EMERGENCY)
    assert consultation.due_at - consultation.created_at == pytest.approx(timedelta(hours=2), abs=timedelta(seconds=5))


def test_an_emergency_request_raises_the_studys_priority(
    study: Study, doctor: User, health_center: Institution
) -> None:
    assert study.priority == Study.Priority.ROUTINE
    request_reading(study, doctor, health_center, priority=Study.Priority.EMERGENCY)
    study.refresh_from_db()
    assert study.priority == Study.Priority.EMERGENCY


def _age(consultation: Consultation, minutes: int) -> None:
    created = timezone.now() - timedelta(minutes=minutes)
    Consultation.objects.filter(pk=consultation.pk).update(
        created_at=created, due_at=services.due_at_for(consultation.priority, created)
    )


def test_the_reader_worklist_puts_emergencies_first_then_the_oldest(
    clinic: Institution, study: Study, doctor: User, reader: User, health_center: Institution
) -> None:
    mr = make_study(clinic, "MR_small.dcm", actor=doctor)
    old_routine = request_reading(study, doctor, health_center, clinical_question="old routine")
    new_routine = request_reading(mr, doctor, health_center, clinical_question="new routine")
    urgent = request_reading(study, doctor, health_center, priority=1, clinical_question="urgent")
    late_emergency = request_reading(mr, doctor, health_center, priority=2, clinical_question="late emergency")
    early_emergency = request_reading(study, doctor, health_center, priority=2, clinical_question="early emergency")
    _age(old_routine, 60 * 80)  # past its 72 h
    _age(new_routine, 10)
    _age(urgent, 30)
    _age(late_emergency, 5)
    _age(early_emergency, 20)
    assert list(selectors.incoming(reader)) == [early_emergency, late_emergency, urgent, old_routine, new_routine]
    counters = selectors.reader_counters(reader)
    assert counters == {"waiting": 5, "emergency": 2, "overdue": 1, "in_reading": 0, "mine": 0}

    services.consultation_accept(consultation=urgent, actor=reader)
    assert list(selectors.my_reading(reader)) == [urgent]
    page = client_for(reader).get("/consultations/incoming/").content.decode()
    assert page.index("early emergency") < page.index("late emergency") < page.index("old routine")
    assert "data-overdue" in page
    assert 'data-counter="emergency">2<' in page
    partial = client_for(reader).get("/consultations/incoming/?partial=1").content.decode()
    assert "<html" not in partial and "early emergency" in partial


def test_the_clinic_list_shows_status_due_time_and_the_report_once_final(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    from consult.tests.helpers import bring_to

    client = client_for(doctor)
    page = client.get("/consultations/requests/").content.decode()
    assert 'data-status="requested"' in page
    assert "Read the report" not in page
    bring_to(Consultation.Status.REPORTED, consultation, doctor, reader)
    page = client.get("/consultations/requests/").content.decode()
    assert 'data-status="reported"' in page
    assert "Read the report" in page
    assert client.get("/consultations/requests/?status=open").status_code == 200
