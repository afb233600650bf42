"""Signed-in sessions are renewed (their idle timeout pushed back) with one write a minute, not one per request."""

from __future__ import annotations

import time
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinicnet.sessions import RENEWED_KEY
from institutions.models import User
from institutions.testing import anonymous_client, client_for


def _session_writes(client: object, path: str = "/healthz") -> int:
    with CaptureQueriesContext(connection) as queries:
        client.get(path)  # type: ignore[attr-defined]
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].startswith(("UPDATE", "INSERT")) and "django_session" in query["sql"]
    )


def test_requests_within_a_minute_write_the_session_once(doctor: User) -> None:
    client = client_for(doctor)
    assert _session_writes(client) == 1  # the first renewal after signing in
    assert [_session_writes(client) for _ in range(5)] == [0, 0, 0, 0, 0]


def test_a_session_renewed_more_than_a_minute_ago_is_renewed_again(doctor: User) -> None:
    client = client_for(doctor)
    client.get("/healthz")
    session = client.session
    session[RENEWED_KEY] = int(time.time()) - 61
    session.save()
    Session.objects.filter(pk=session.session_key).update(expire_date=timezone.now() + timedelta(minutes=5))
    assert _session_writes(client) == 1
    expiry = Session.objects.get(pk=session.session_key).expire_date
    assert expiry > timezone.now() + timedelta(minutes=29)


def test_an_idle_session_still_ends(doctor: User) -> None:
    client = client_for(doctor)
    client.get("/healthz")
    Session.objects.filter(pk=client.session.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/studies/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_anonymous_visitors_get_no_session_row(db: None) -> None:
    before = Session.objects.count()
    client = anonymous_client()
    client.get("/healthz")
    client.get("/accounts/login/")
    assert Session.objects.count() == before
