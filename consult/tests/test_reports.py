"""Reports: templates, autosave, signing locks a version with a content hash, addenda add versions."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from consult import services
from consult.models import Consultation, Report, ReportLocked
from consult.tests.helpers import bring_to, write_and_sign
from institutions.models import User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db
Status = Consultation.Status


def test_a_ct_study_gets_the_ct_template(consultation: Consultation, reader: User) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    draft = services.report_save_draft(consultation=consultation, actor=reader)
    assert draft.kind == Report.Kind.CT
    assert draft.findings.startswith("Technique:")
    assert draft.version == 1


def test_templates_exist_for_every_kind() -> None:
    assert set(Report.Kind.values) == {"chest_radiograph", "dental_panoramic", "ct", "mr", "general"}
    assert "Lungs:" in services.report_template("chest_radiograph")[0]
    assert "Teeth:" in services.report_template("dental_panoramic")[0]
    assert services.report_template("general") == ("", "")


def test_autosave_stores_the_draft_and_says_when(consultation: Consultation, reader: User) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    client = client_for(reader)
    editor = client.get(f"/consultations/{consultation.uuid}/report/")
    assert editor.status_code == 200
    assert "Technique:" in editor.content.decode()  # the CT template, offered
    # Looking at the editor changes nothing; the first save does.
    assert not Report.objects.exists()
    consultation.refresh_from_db()
    assert consultation.status == Status.ACCEPTED
    response = client.post(
        f"/consultations/{consultation.uuid}/report/draft/",
        {"findings": "우하엽에 8 mm 결절.", "kind": "ct"},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1
    assert len(body["saved_at"]) == 5 and body["saved_at"][2] == ":"
    draft = Report.objects.get(consultation=consultation)
    assert draft.findings == "우하엽에 8 mm 결절."
    assert draft.status == Report.Status.DRAFT
    consultation.refresh_from_db()
    # Writing is reading: the first save starts it.
    assert consultation.status == Status.READING
    # A second save updates the same draft.
    client.post(f"/consultations/{consultation.uuid}/report/draft/", {"impression": "추적 검사 권고"})
    draft.refresh_from_db()
    assert (draft.findings, draft.impression) == ("우하엽에 8 mm 결절.", "추적 검사 권고")
    assert Report.objects.filter(consultation=consultation).count() == 1


def test_the_requester_never_sees_a_draft(consultation: Consultation, doctor: User, reader: User) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    services.report_save_draft(consultation=consultation, actor=reader, findings="아직 작성 중인 소견")
    page = client_for(doctor).get(f"/consultations/{consultation.uuid}/").content.decode()
    assert "아직 작성 중인 소견" not in page
    assert "No signed report yet." in page


def test_signing_locks_the_version_with_signer_time_and_hash(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    bring_to(Status.READING, consultation, doctor, reader)
    services.report_save_draft(
        consultation=consultation, actor=reader, findings="우하엽에 8 mm 결절.\r\n", impression="추적 CT 권고."
    )
    report = services.report_sign(consultation=consultation, actor=reader)
    report = Report.objects.get(pk=report.pk)
    assert report.status == Report.Status.FINAL
    assert report.signed_by == reader
    assert report.signed_at is not None
    canonical = json.loads(report.canonical_content())
    assert canonical["findings"] == "우하엽에 8 mm 결절."  # normalised line ends, trimmed
    assert canonical["signed_by"] == "reader"
    assert canonical["previous"] == ""
    assert report.content_hash == hashlib.sha256(report.canonical_content()).hexdigest()
    assert report.verify()
    consultation.refresh_from_db()
    assert consultation.status == Status.REPORTED

    # Locked: neither the model nor the services change it.
    report.findings = "바꿔치기"
    with pytest.raises(ReportLocked):
        report.save()
    with pytest.raises(ReportLocked):
        Report.objects.get(pk=report.pk).delete()
    with pytest.raises(services.TransitionConflict):
        services.report_save_draft(consultation=consultation, actor=reader, findings="바꿔치기")
    response = client_for(reader).post(
        f"/consultations/{consultation.uuid}/report/draft/",
        {"findings": "바꿔치기"},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 409
    assert Report.objects.get(pk=report.pk).findings == "우하엽에 8 mm 결절.\r\n"
    # Tampering behind the application's back shows.
    Report.objects.filter(pk=report.pk).update(impression="정상")
    assert not Report.objects.get(pk=report.pk).verify()


def test_only_a_reader_signs_and_never_an_empty_report(consultation: Consultation, doctor: User, reader: User) -> None:
    bring_to(Status.READING, consultation, doctor, reader)
    services.report_save_draft(consultation=consultation, actor=reader, kind="general", findings=" ", impression="")
    with pytest.raises(ValidationError):
        services.report_sign(consultation=consultation, actor=reader)
    with pytest.raises(PermissionDenied):
        services.report_sign(consultation=consultation, actor=doctor)


def test_signing_over_http_saves_the_form_first(consultation: Consultation, doctor: User, reader: User) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    client = client_for(reader)
    client.get(f"/consultations/{consultation.uuid}/report/")
    response = client.post(
        f"/consultations/{consultation.uuid}/report/sign/",
        {"kind": "ct", "findings": "간에 낭종.", "impression": "단순 간낭종."},
    )
    assert response.status_code == 302
    final = consultation.final_report()
    assert final is not None and final.findings == "간에 낭종."
    # The requester sees it on the consultation page.
    page = client_for(doctor).get(f"/consultations/{consultation.uuid}/").content.decode()
    assert "단순 간낭종." in page
    assert final.content_hash in page


def test_addenda_are_new_signed_versions_with_the_history_kept(
    consultation: Consultation, doctor: User, reader: User
) -> None:
    bring_to(Status.REPORTED, consultation, doctor, reader)
    first = consultation.final_report()
    assert first is not None
    client = client_for(reader)
    assert client.post(f"/consultations/{consultation.uuid}/report/addendum/").status_code == 302
    draft = services.report_draft(consultation=consultation)
    assert draft is not None
    assert (draft.version, draft.findings, draft.is_addendum) == (2, first.findings, True)
    with pytest.raises(ValidationError):
        services.report_sign(consultation=consultation, actor=reader)  # says nothing about what changed
    services.report_save_draft(
        consultation=consultation, actor=reader, addendum="이전 CT와 비교: 크기 변화 없음.", impression="안정적 결절."
    )
    second = services.report_sign(consultation=consultation, actor=reader)
    assert consultation.final_report() == second
    assert json.loads(second.canonical_content(first.content_hash))["previous"] == first.content_hash
    assert second.verify() and Report.objects.get(pk=first.pk).verify()
    assert list(consultation.reports.values_list("version", "status")) == [(1, "final"), (2, "final")]
    page = client_for(doctor).get(f"/consultations/{consultation.uuid}/").content.decode()
    assert "이전 CT와 비교: 크기 변화 없음." in page
    assert "Report history" in page
    assert first.content_hash in page
    printed = client_for(doctor).get(f"/consultations/{consultation.uuid}/report/print/?version=1").content.decode()
    assert first.impression in printed


def test_addenda_need_a_signed_report(consultation: Consultation, doctor: User, reader: User) -> None:
    bring_to(Status.READING, consultation, doctor, reader)
    with pytest.raises(services.TransitionConflict):
        services.report_start_addendum(consultation=consultation, actor=reader)


def test_the_study_panel_shows_the_final_report_and_the_request_button(
    consultation: Consultation, doctor: User, reader: User, outsider: User
) -> None:
    from django.template.loader import render_to_string

    from consult.selectors import study_panel_context

    before = render_to_string(
        "consult/includes/study_panel.html", {"user": doctor, **study_panel_context(doctor, consultation.study)}
    )
    assert f"/consultations/new/{consultation.study.study_instance_uid}/" in before
    assert str(consultation.uuid) in before
    write_and_sign_after_accept(consultation, reader)
    context = study_panel_context(doctor, consultation.study)
    after = render_to_string("consult/includes/study_panel.html", {"user": doctor, **context})
    assert "추적 CT 권고." in after
    # The reader sees the consultation but cannot ask for a reading of a study that is not theirs.
    assert study_panel_context(reader, consultation.study)["consult_panel"]["can_request"] is False
    # Someone who cannot see the consultation gets nothing from the panel.
    assert study_panel_context(outsider, consultation.study)["consult_panel"]["consultations"] == []


def write_and_sign_after_accept(consultation: Consultation, reader: User) -> None:
    services.consultation_accept(consultation=consultation, actor=reader)
    write_and_sign(consultation, reader)
