"""Co-reading fixtures: a real CT study at the clinic, rooms on it, and websocket participants.

The doctor's clinic owns the study and asks its health center (reader) to read
it; people at the other clinic (outsider) must never get in.
"""

from __future__ import annotations

import pytest

from consult.models import Consultation
from consult.tests.conftest import request_reading
from coreading import services
from coreading.models import Room
from imaging.models import Study
from imaging.testing import make_study
from institutions.models import Institution, User


@pytest.fixture
def study(clinic: Institution, doctor: User) -> Study:
    return make_study(clinic, "CT_small.dcm", actor=doctor)


@pytest.fixture
def consultation(study: Study, doctor: User, health_center: Institution, reader: User) -> Consultation:
    return request_reading(study, doctor, health_center)


@pytest.fixture
def consultation_room(consultation: Consultation, doctor: User) -> Room:
    room, _created = services.consultation_room(actor=doctor, consultation_uuid=consultation.uuid, create=True)
    return room


@pytest.fixture
def adhoc_room(study: Study, doctor: User, clerk: User) -> Room:
    room = services.room_create(actor=doctor, study=study, title="같이 보기")
    services.participant_invite(room=room, actor=doctor, who=clerk.username)
    return room
