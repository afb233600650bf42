"""Consultation fixtures on top of the shared personas (conftest.py at the root).

The clinic (밝은내과의원, doctor and clerk) asks its health center (reader) to
read a real CT study. Another health center and its reader, and the other
clinic's people, must never see it.
"""

from __future__ import annotations

import pytest

from consult import services
from consult.models import Consultation
from imaging.models import Study
from imaging.testing import make_study
from institutions.models import Institution, Role, User
from institutions.testing import make_institution, make_member


@pytest.fixture
def study(clinic: Institution, doctor: User) -> Study:
    return make_study(clinic, "CT_small.dcm", actor=doctor)


@pytest.fixture
def second_reader(health_center: Institution) -> User:
    return make_member(health_center, Role.READER, username="reader2", name="박판독")


@pytest.fixture
def hc_admin(health_center: Institution) -> User:
    """An institution admin at the health center: not a reader, so no consultations."""
    return make_member(health_center, Role.INSTITUTION_ADMIN, username="hcadmin", name="정보건")


@pytest.fixture
def other_health_center(db: None) -> Institution:
    return make_institution(kind=Institution.Kind.HEALTH_CENTER, name_ko="한빛시 서구보건소")


@pytest.fixture
def other_reader(other_health_center: Institution) -> User:
    return make_member(other_health_center, Role.READER, username="otherreader", name="서판독")


def request_reading(
    study: Study,
    doctor: User,
    target: Institution,
    priority: int = Study.Priority.ROUTINE,
    **fields: object,
) -> Consultation:
    return services.consultation_create(
        actor=doctor,
        study=study,
        target=target,
        priority=priority,
        clinical_question=fields.pop("clinical_question", "폐 결절이 있습니까?"),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def consultation(study: Study, doctor: User, health_center: Institution, reader: User) -> Consultation:
    return request_reading(study, doctor, health_center)
