"""imaging.previews: the study's status when several workers finish its instances at once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from imaging.models import Instance, Study
from imaging.previews import refresh_study_status
from imaging.testing import make_study
from institutions.models import Institution

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the workers are threads with connections of their own
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks between connections: PostgreSQL"),
]


def _some_backend_waits_for_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return bool(cursor.fetchone()[0])


def test_a_refresh_counts_after_a_worker_finishing_the_same_study_and_ready_stays(clinic: Institution) -> None:
    study = make_study(clinic)
    instance = study.instances.get()
    Instance.objects.filter(pk=instance.pk).update(preview_status=Instance.PreviewStatus.RENDERING)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PENDING)
    holding, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        """Finishes the study's last instance while it holds the study's row (as its own refresh does)."""
        try:
            with transaction.atomic():
                Study.objects.select_for_update().get(pk=study.pk)
                Instance.objects.filter(pk=instance.pk).update(preview_status=Instance.PreviewStatus.READY)
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    statuses: list[str] = []

    def refresher() -> None:
        try:
            statuses.append(refresh_study_status(study.pk))
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_worker)
    worker.start()
    assert holding.wait(10)
    refreshing = threading.Thread(target=refresher)
    refreshing.start()
    deadline = time.monotonic() + 10
    while not _some_backend_waits_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    worker.join(10)
    refreshing.join(10)

    # Counted before the other worker's commit, it would have said "pending", and saved last.
    assert statuses == [Study.Status.READY]
    study.refresh_from_db()
    assert study.status == Study.Status.READY
