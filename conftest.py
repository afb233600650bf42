"""Shared personas for every app's tests.

Two health centers' worth of people are enough to prove isolation: a
reader at the health center, a doctor and a clerk at an affiliated clinic,
and people at another clinic who must never see the first clinic's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import translation

from institutions.models import Institution, Role, User
from institutions.testing import make_institution, make_member, make_user


@pytest.fixture(autouse=True)
def english_messages() -> Iterator[None]:
    """Code outside requests speaks English in tests, so assertions can match messages."""
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def isolated_storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test stores files in its own empty folder (unless S3 is configured)."""
    from django.conf import settings

    if settings.STORAGES["default"]["BACKEND"] != "django.core.files.storage.FileSystemStorage":
        yield
        return
    django_settings = request.getfixturevalue("settings")
    folder = tmp_path_factory.mktemp("storage")
    django_settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    yield


@pytest.fixture
def health_center(db: None) -> Institution:
    return make_institution(kind=Institution.Kind.HEALTH_CENTER, name_ko="한빛시 동구보건소")


@pytest.fixture
def clinic(health_center: Institution) -> Institution:
    return make_institution(health_center=health_center, name_ko="밝은내과의원")


@pytest.fixture
def other_clinic(health_center: Institution) -> Institution:
    return make_institution(health_center=health_center, name_ko="푸른가정의학과의원")


@pytest.fixture
def reader(health_center: Institution) -> User:
    return make_member(health_center, Role.READER, username="reader", name="김영상")


@pytest.fixture
def doctor(clinic: Institution) -> User:
    return make_member(clinic, Role.PHYSICIAN, username="doctor", name="이의사")


@pytest.fixture
def clerk(clinic: Institution) -> User:
    return make_member(clinic, Role.CLINIC_STAFF, username="clerk", name="최접수")


@pytest.fixture
def clinic_admin(clinic: Institution) -> User:
    return make_member(clinic, Role.INSTITUTION_ADMIN, username="clinicadmin", name="박원장")


@pytest.fixture
def outsider(other_clinic: Institution) -> User:
    return make_member(other_clinic, Role.PHYSICIAN, username="outsider", name="남의사")


@pytest.fixture
def outsider_admin(other_clinic: Institution) -> User:
    return make_member(other_clinic, Role.INSTITUTION_ADMIN, username="otheradmin", name="남원장")


@pytest.fixture
def platform_admin(db: None) -> User:
    return make_user(username="platform", name="플랫폼관리자", is_staff=True, is_superuser=True)
