"""Drive a consultation to any status through the real services."""

from __future__ import annotations

from consult import services
from consult.models import Consultation
from institutions.models import User

Status = Consultation.Status


def write_and_sign(consultation: Consultation, reader: User, findings: str = "우하엽에 8 mm 결절.") -> None:
    services.report_save_draft(consultation=consultation, actor=reader, findings=findings, impression="추적 CT 권고.")
    services.report_sign(consultation=consultation, actor=reader)


def bring_to(status: str, consultation: Consultation, doctor: User, reader: User) -> Consultation:
    if status == Status.DECLINED:
        return services.consultation_decline(consultation=consultation, actor=reader, reason="판독 불가 영상")
    if status == Status.CANCELLED:
        return services.consultation_cancel(consultation=consultation, actor=doctor)
    steps = [Status.ACCEPTED, Status.READING, Status.REPORTED, Status.CLOSED]
    if status == Status.REQUESTED:
        return consultation
    services.consultation_accept(consultation=consultation, actor=reader)
    if status == Status.ACCEPTED:
        return consultation
    services.consultation_start(consultation=consultation, actor=reader)
    if status == Status.READING:
        return consultation
    write_and_sign(consultation, reader)
    if status == Status.REPORTED:
        return consultation
    services.consultation_close(consultation=consultation, actor=doctor)
    assert status == Status.CLOSED, steps
    return consultation
