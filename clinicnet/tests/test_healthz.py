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


def test_health_checks_leave_no_channel_subscribed() -> None:
    """With the pub/sub layer (production), each check's channel is unsubscribed again."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from clinicnet.health import _round_trip

    layer = get_channel_layer()
    if not hasattr(layer, "_get_layer"):
        pytest.skip("only the Redis pub/sub layer keeps channels subscribed")

    async def checks() -> int:
        for _check in range(3):
            await _round_trip()
        held = len(layer._get_layer().channels)
        await layer.flush()
        return held

    assert async_to_sync(checks)() == 0
