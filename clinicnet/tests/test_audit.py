from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from clinicnet.audit.models import AppendOnlyError, AuditEvent
from clinicnet.audit.services import audit_record
from institutions.models import User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db


def test_an_event_records_actor_address_and_agent(doctor: User) -> None:
    client = client_for(doctor)
    client.get("/", headers={"user-agent": "Mozilla/5.0 Test"})
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="Reader/1.0")
    request.user = doctor
    event = audit_record(action="study.view", request=request, object_type="study", object_id="1.2.3")
    assert (event.actor, event.actor_label, event.client_address, event.user_agent) == (
        doctor,
        "doctor",
        "10.1.2.3",
        "Reader/1.0",
    )


def test_forwarded_addresses_count_only_when_trusted(settings, doctor: User) -> None:
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert audit_record(action="x", request=request).client_address == "10.0.0.1"
    settings.TRUST_X_FORWARDED_FOR = True
    assert audit_record(action="x", request=request).client_address == "203.0.113.9"


def test_events_cannot_be_changed_or_deleted(doctor: User) -> None:
    event = audit_record(action="auth.login", actor=doctor)
    event.action = "something else"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_changes_on_postgresql(doctor: User) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only; SQLite relies on the model")
    event = audit_record(action="auth.login", actor=doctor)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])


def test_the_admin_view_is_read_only(platform_admin: User, doctor: User) -> None:
    event = audit_record(action="auth.login", actor=doctor)
    client = client_for(platform_admin)
    listing = client.get("/admin/audit/auditevent/?action=auth.login")
    assert listing.status_code == 200
    assert "auth.login" in listing.content.decode()
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert 'name="action"' not in page.content.decode()
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_non_staff_cannot_see_the_audit_log(doctor: User) -> None:
    response = client_for(doctor).get("/admin/audit/auditevent/")
    assert response.status_code == 302
    assert Client().get("/admin/audit/auditevent/").status_code == 302
