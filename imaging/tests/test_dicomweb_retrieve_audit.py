"""DICOMweb reads are audited once per person, study and kind of read within a window, not per request.

A viewer opening a 300-slice CT sends hundreds of requests; one ``study.retrieve`` row says who
looked at which study, and the window (``DICOMWEB_RETRIEVE_AUDIT_SECONDS``, 5 minutes by default)
says for how long it stands. Downloading the DICOM files is recorded apart from looking at them.
"""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from clinicnet.audit.models import AuditEvent
from imaging.models import Instance, Study
from imaging.services import study_grant
from imaging.testing import make_study
from institutions.models import Institution, User
from institutions.testing import client_for


@pytest.fixture
def mr(clinic: Institution) -> Study:
    return make_study(clinic, "emri_small.dcm")  # 10 frames


def _frames_url(study: Study) -> str:
    instance = Instance.objects.select_related("series").get(study=study)
    return (
        f"/dicomweb/studies/{study.study_instance_uid}/series/{instance.series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}/frames"
    )


def _rows(study: Study) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="study.retrieve", object_id=study.study_instance_uid).order_by("id"))


def _view(client: object, study: Study) -> None:
    """What the viewer asks for: the metadata, then every frame."""
    assert client.get(f"/dicomweb/studies/{study.study_instance_uid}/metadata").status_code == 200  # type: ignore[attr-defined]
    for number in range(1, 11):
        assert client.get(f"{_frames_url(study)}/{number}").status_code == 200  # type: ignore[attr-defined]


def test_a_viewer_reading_every_frame_writes_one_row(mr: Study, doctor: User) -> None:
    _view(client_for(doctor), mr)
    (row,) = _rows(mr)
    assert row.actor_id == doctor.pk
    assert row.institution_id == mr.institution_id
    assert row.detail == {"resource": "metadata", "window": 300}


def test_each_person_gets_their_own_row(mr: Study, doctor: User, reader: User, health_center: Institution) -> None:
    study_grant(study=mr, institution=health_center, reason="consultation", granted_by=doctor)
    _view(client_for(doctor), mr)
    _view(client_for(reader), mr)
    assert [row.actor_id for row in _rows(mr)] == [doctor.pk, reader.pk]


def test_each_study_gets_its_own_row(mr: Study, clinic: Institution, doctor: User) -> None:
    ct = make_study(clinic, "CT_small.dcm")
    client = client_for(doctor)
    _view(client, mr)
    client.get(f"/dicomweb/studies/{ct.study_instance_uid}/metadata")
    assert len(_rows(mr)) == 1
    assert len(_rows(ct)) == 1


def test_downloading_the_files_is_recorded_even_after_viewing(mr: Study, doctor: User) -> None:
    client = client_for(doctor)
    _view(client, mr)
    response = client.get(f"/dicomweb/studies/{mr.study_instance_uid}")
    assert response.status_code == 200
    b"".join(response.streaming_content)
    client.get(f"/dicomweb/studies/{mr.study_instance_uid}")
    assert [row.detail["resource"] for row in _rows(mr)] == ["metadata", "study"]


def test_a_new_window_writes_a_new_row(mr: Study, doctor: User, settings: object) -> None:
    settings.DICOMWEB_RETRIEVE_AUDIT_SECONDS = 1  # type: ignore[attr-defined]
    client = client_for(doctor)
    client.get(f"{_frames_url(mr)}/1")
    client.get(f"{_frames_url(mr)}/2")
    assert len(_rows(mr)) == 1
    time.sleep(1.2)
    client.get(f"{_frames_url(mr)}/3")
    rows = _rows(mr)
    assert len(rows) == 2
    assert rows[1].detail == {
        "resource": "frames",
        "series": rows[0].detail["series"],
        "instance": rows[0].detail["instance"],
        "frames": "3",
        "window": 1,
    }


def test_a_window_of_zero_records_every_request(mr: Study, doctor: User, settings: object) -> None:
    settings.DICOMWEB_RETRIEVE_AUDIT_SECONDS = 0  # type: ignore[attr-defined]
    client = client_for(doctor)
    client.get(f"{_frames_url(mr)}/1")
    client.get(f"{_frames_url(mr)}/2")
    assert [row.detail["frames"] for row in _rows(mr)] == ["1", "2"]
    assert "window" not in _rows(mr)[0].detail


def test_every_request_is_recorded_when_the_cache_is_down(
    mr: Study, doctor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(cache, "add", broken)
    client = client_for(doctor)
    client.get(f"{_frames_url(mr)}/1")
    client.get(f"{_frames_url(mr)}/2")
    assert len(_rows(mr)) == 2


def test_refused_and_not_modified_requests_write_no_row(
    mr: Study, doctor: User, outsider: User, settings: object
) -> None:
    settings.DICOMWEB_RETRIEVE_AUDIT_SECONDS = 0  # type: ignore[attr-defined]  # any row would show
    assert client_for(outsider).get(f"{_frames_url(mr)}/1").status_code == 404
    assert _rows(mr) == []
    client = client_for(doctor)
    first = client.get(f"{_frames_url(mr)}/1")
    again = client.get(f"{_frames_url(mr)}/1", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert len(_rows(mr)) == 1


def test_within_its_window_a_process_asks_the_cache_once(
    mr: Study, doctor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    real_add = cache.add

    def counting_add(key: str, *args: object, **kwargs: object) -> bool:
        asked.append(key)
        return real_add(key, *args, **kwargs)

    monkeypatch.setattr(cache, "add", counting_add)
    _view(client_for(doctor), mr)
    assert len(asked) == 1  # the metadata's; the ten frames are covered by this process's memory
    assert len(_rows(mr)) == 1


def test_a_window_opened_by_another_process_ends_when_its_cache_entry_says(
    mr: Study, doctor: User, settings: object
) -> None:
    """The process-local copy never covers reads past the window recorded in the shared cache."""
    client = client_for(doctor)
    url = f"/dicomweb/studies/{mr.study_instance_uid}/metadata"
    key = f"dicomweb:audit:{doctor.pk}:{mr.pk}:{mr.created_at.timestamp():.6f}:images"
    # Another web process recorded this read 299 s ago: its window has a second left (whole
    # seconds: Redis keeps timeouts in seconds).
    assert cache.add(key, time.time() + 1, timeout=1)
    assert client.get(url).status_code == 200
    assert _rows(mr) == []
    time.sleep(1.2)
    assert client.get(url).status_code == 200
    assert len(_rows(mr)) == 1


def test_the_per_process_memory_of_windows_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from imaging.dicomweb import common

    monkeypatch.setattr(common, "_covered_until", {})
    monkeypatch.setattr(common, "_COVERED_MAX", 4)
    now = time.time()
    common._covered_until.update({"ended-1": now - 5, "ended-2": now - 1, "open-1": now + 60, "open-2": now + 60})
    common._remember_window("new", now + 300, now)
    assert common._covered_until == {"open-1": now + 60, "open-2": now + 60, "new": now + 300}
    common._remember_window("ended-already", now - 1, now)  # a window that is over is not remembered
    assert "ended-already" not in common._covered_until
