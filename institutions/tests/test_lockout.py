from __future__ import annotations

import pytest
from django.test import override_settings

from clinicnet.audit.models import AuditEvent
from institutions.models import User
from institutions.testing import TEST_PASSWORD, anonymous_client, sign_in

pytestmark = pytest.mark.django_db


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_failures_lock_the_account_even_for_the_right_password(doctor: User) -> None:
    client = anonymous_client()
    for _ in range(2):
        response = client.post("/accounts/login/", {"username": "doctor", "password": "wrong"})
        assert response.status_code == 200
        assert "enter a correct" in response.content.decode().lower()
    locked = client.post("/accounts/login/", {"username": "doctor", "password": "wrong"})
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert not sign_in(anonymous_client(), "doctor", TEST_PASSWORD)
    assert AuditEvent.objects.filter(action="auth.login_failed", actor_label="doctor").count() >= 3


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_success_before_the_limit_resets_the_count(doctor: User) -> None:
    client = anonymous_client()
    for _ in range(2):
        client.post("/accounts/login/", {"username": "doctor", "password": "wrong"})
    assert sign_in(anonymous_client(), "doctor", TEST_PASSWORD)
    for _ in range(2):
        client.post("/accounts/login/", {"username": "doctor", "password": "wrong"})
    assert sign_in(anonymous_client(), "doctor", TEST_PASSWORD)


def test_logins_and_failed_logins_are_audited(doctor: User) -> None:
    sign_in(anonymous_client(), "nobody-here", "whatever")
    sign_in(anonymous_client(), "doctor", TEST_PASSWORD)
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.actor is None
    assert failed.actor_label == "nobody-here"
    assert failed.client_address == "127.0.0.1"
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor == doctor
