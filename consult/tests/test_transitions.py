"""The status machine: every legal transition works, every illegal one answers 409 with the allowed ones."""

from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from clinicnet.audit.models import AuditEvent
from consult import services
from consult.models import Consultation, ConsultationTransition
from consult.tests.helpers import bring_to, write_and_sign
from institutions.models import User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db
Status = Consultation.Status

EXPECTED = {
    # status: {action: resulting status} — the whole machine, written out by hand.
    Status.REQUESTED: {"accept": Status.ACCEPTED, "decline": Status.DECLINED, "cancel": Status.CANCELLED},
    Status.ACCEPTED: {"start": Status.READING, "decline": Status.DECLINED, "cancel": Status.CANCELLED},
    Status.READING: {"report": Status.REPORTED, "decline": Status.DECLINED, "cancel": Status.CANCELLED},
    Status.REPORTED: {"close": Status.CLOSED},
    Status.CLOSED: {},
    Status.DECLINED: {},
    Status.CANCELLED: {},
}


def test_the_machine_allows_exactly_the_documented_transitions() -> None:
    for status, transitions in EXPECTED.items():
        assert services.allowed_actions(status) == list(transitions), status
        for action, target in transitions.items():
            assert services.ACTIONS[action].target == target


def _do(action: str, consultation: Consultation, doctor: User, reader: User) -> Consultation:
    if action == "report":
        if consultation.status == Status.READING:
            write_and_sign(consultation, reader)
            return consultation
        # The machine itself: saving a draft would first start the reading.
        return services._transition(consultation=consultation, action="report", actor=reader)
    actor = doctor if action in ("cancel", "close") else reader
    return services.consultation_transition(consultation=consultation, action=action, actor=actor, reason="사유")


@pytest.mark.parametrize(
    ("status", "action"),
    list(itertools.product(list(EXPECTED), ["accept", "start", "report", "close", "decline", "cancel"])),
)
def test_each_action_from_each_status_is_done_or_refused_with_the_allowed_ones(
    consultation: Consultation, doctor: User, reader: User, status: str, action: str
) -> None:
    bring_to(status, consultation, doctor, reader)
    assert consultation.status == status
    if action in EXPECTED[status]:
        _do(action, consultation, doctor, reader)
        consultation.refresh_from_db()
        assert consultation.status == EXPECTED[status][action]
        last = consultation.transitions.last()
        assert last is not None
        assert (last.from_status, last.to_status) == (status, EXPECTED[status][action])
    else:
        version = consultation.version
        with pytest.raises(services.TransitionConflict) as raised:
            _do(action, consultation, doctor, reader)
        assert raised.value.status == status
        assert raised.value.allowed == list(EXPECTED[status])
        consultation.refresh_from_db()
        assert (consultation.status, consultation.version) == (status, version)


def test_every_transition_is_timestamped_attributed_and_audited(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    bring_to(Status.CLOSED, consultation, doctor, reader)
    consultation.refresh_from_db()
    rows = list(ConsultationTransition.objects.filter(consultation=consultation).values_list("to_status", "actor"))
    assert rows == [
        (Status.REQUESTED, doctor.pk),
        (Status.ACCEPTED, reader.pk),
        (Status.READING, reader.pk),
        (Status.REPORTED, reader.pk),
        (Status.CLOSED, doctor.pk),
    ]
    assert consultation.accepted_by == reader
    for stamp in ("accepted_at", "reading_at", "reported_at", "closed_at"):
        assert getattr(consultation, stamp) is not None, stamp
    assert consultation.accepted_at <= consultation.reading_at <= consultation.reported_at <= consultation.closed_at
    assert consultation.version == 5
    audited = list(
        AuditEvent.objects.filter(object_id=str(consultation.uuid), action__startswith="consultation.")
        .order_by("id")
        .values_list("action", "actor")
    )
    assert audited == [
        ("consultation.create", doctor.pk),
        ("consultation.accept", reader.pk),
        ("consultation.start", reader.pk),
        ("consultation.report", reader.pk),
        ("consultation.close", doctor.pk),
    ]


def test_declining_needs_a_reason_and_keeps_it(consultation: Consultation, reader: User) -> None:
    with pytest.raises(ValidationError):
        services.consultation_decline(consultation=consultation, actor=reader, reason="  ")
    services.consultation_decline(consultation=consultation, actor=reader, reason="영상 품질 불량으로 재촬영 필요")
    consultation.refresh_from_db()
    assert consultation.status == Status.DECLINED
    assert consultation.decline_reason == "영상 품질 불량으로 재촬영 필요"
    assert consultation.transitions.last().note == "영상 품질 불량으로 재촬영 필요"


def test_only_the_reading_side_accepts_and_only_the_requester_cancels(
    consultation: Consultation, doctor: User, clerk: User, reader: User
) -> None:
    with pytest.raises(PermissionDenied):
        services.consultation_accept(consultation=consultation, actor=doctor)
    with pytest.raises(PermissionDenied):
        services.consultation_cancel(consultation=consultation, actor=reader)
    # Any member of the requesting clinic may cancel its request.
    services.consultation_cancel(consultation=consultation, actor=clerk, reason="환자 전원")
    assert consultation.status == Status.CANCELLED


def test_an_illegal_transition_over_http_answers_409_with_the_allowed_ones(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    bring_to(Status.REPORTED, consultation, doctor, reader)
    url = f"/consultations/{consultation.uuid}/actions/accept/"
    response = client_for(reader).post(url, headers={"accept": "application/json"})
    assert response.status_code == 409
    assert response.json() == {
        "error": "This consultation is reported; it cannot be accepted now.",
        "status": "reported",
        "allowed": ["close"],
    }
    page = client_for(reader).post(url)
    assert page.status_code == 409
    assert "Possible from this status" in page.content.decode()
    assert "Close" in page.content.decode()


def test_the_wrong_side_gets_403_and_an_unknown_action_400(consultation: Consultation, doctor: User) -> None:
    client = client_for(doctor)
    response = client.post(
        f"/consultations/{consultation.uuid}/actions/accept/", headers={"accept": "application/json"}
    )
    assert response.status_code == 403
    assert "Only a reader at" in response.json()["error"]
    response = client.post(
        f"/consultations/{consultation.uuid}/actions/explode/", headers={"accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Unknown action “explode”."
    # Reporting happens by signing, never through the transition URL.
    response = client.post(
        f"/consultations/{consultation.uuid}/actions/report/", headers={"accept": "application/json"}
    )
    assert response.status_code == 409


def test_accepting_in_one_click_from_the_worklist_redirects_to_the_consultation(
    consultation: Consultation, reader: User
) -> None:
    response = client_for(reader).post(f"/consultations/{consultation.uuid}/actions/accept/")
    assert response.status_code == 302
    assert response["Location"] == f"/consultations/{consultation.uuid}/"
    consultation.refresh_from_db()
    assert (consultation.status, consultation.accepted_by) == (Status.ACCEPTED, reader)
