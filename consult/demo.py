"""Demo data for `make run`: a study at the demo clinic and one reading request (idempotent)."""

from __future__ import annotations

from collections.abc import Callable

from consult.models import Consultation
from imaging.models import Study
from imaging.testing import ingest_testdata
from institutions.models import Institution, User

DEMO_CLINIC = "31200101"  # 밝은내과의원
DEMO_HEALTH_CENTER = "39100022"  # 한빛시 동구보건소
DEMO_QUESTION = "흉통으로 내원한 환자입니다. 폐 결절 여부 판독 부탁드립니다."


def load(write: Callable[[str], None]) -> list[tuple[str, str]]:
    from consult import services

    clinic = Institution.objects.filter(code=DEMO_CLINIC).first()
    health_center = Institution.objects.filter(code=DEMO_HEALTH_CENTER).first()
    doctor = User.objects.filter(username="doctor").first()
    if clinic is None or health_center is None or doctor is None:
        write("consultations: demo institutions missing, nothing loaded")
        return []
    if not Study.objects.filter(institution=clinic).exists():
        # The demo clinic needs something to ask about: pydicom's small CT and MR studies.
        ingest_testdata(clinic, "CT_small.dcm", "MR_small.dcm", actor=doctor)
    studies = Study.objects.filter(institution=clinic).order_by("id")
    # A CT if imaging's demo stored one (it has images to read), else whatever is there.
    study = studies.filter(modalities__contains="CT").first() or studies.first()
    if study is None:
        write("consultations: no demo study could be stored")
        return []
    if Consultation.objects.filter(requesting_institution=clinic, clinical_question=DEMO_QUESTION).exists():
        write("consultations: demo request already there")
        return []
    services.consultation_create(
        actor=doctor,
        study=study,
        target=health_center,
        priority=Consultation.Priority.ROUTINE,
        clinical_question=DEMO_QUESTION,
        clinical_history="고혈압으로 치료 중. 흡연력 20갑년.",
        send_notifications=False,
    )
    write("consultations: 1 demo reading request created")
    return []
