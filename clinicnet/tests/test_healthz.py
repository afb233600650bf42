from __future__ import annotations

from unittest import mock

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_it_reports_each_dependency() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "storage", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


def test_a_failing_dependency_makes_it_503_and_says_which() -> None:
    with mock.patch("clinicnet.health.default_storage.save", side_effect=OSError("disk full")):
        response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"] == {"ok": False, "error": "OSError: disk full"}
    assert body["checks"]["database"]["ok"] is True
