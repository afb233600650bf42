"""C-STORE answered before its instance is indexed (imaging.ingest, "Acknowledged first, indexed next").

Driven by a real pynetdicom SCU against the SCP in a thread, as in test_dimse.py.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pydicom
import pytest
from django.db import OperationalError
from django.utils import timezone
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode
from pynetdicom.transport import ThreadedAssociationServer

from clinicnet.audit.models import AuditEvent
from imaging import storage
from imaging.dimse import Status, start_scp
from imaging.ingest import IngestSession, recover_acknowledged
from imaging.models import IngestJournal, Instance, Series, Study
from imaging.testing import testdata_path
from imaging.tests.conftest import wait_until
from imaging.tests.test_dimse import associate, stored_bytes, wait_for_associations_to_end
from institutions.models import Institution

pytestmark = pytest.mark.django_db(transaction=True)


def slices(count: int) -> list[Dataset]:
    """*count* instances of one CT series (CT_small.dcm with its own SOP Instance UID and number each)."""
    series = []
    for number in range(1, count + 1):
        ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{number}"
        ds.InstanceNumber = number
        series.append(ds)
    return series


def send(server: ThreadedAssociationServer, datasets: list[Dataset]) -> list[int]:
    """C-STORE each data set on one association; their statuses."""
    assoc = associate(server, [(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)])
    assert assoc.is_established
    try:
        return [assoc.send_c_store(ds).Status for ds in datasets]
    finally:
        assoc.release()
        wait_for_associations_to_end(server)


def wait_until_indexed(sop_instance_uid: str) -> None:
    """The SCP indexes an acknowledged instance just after its answer; wait for its row."""
    wait_until(
        lambda: Instance.objects.filter(sop_instance_uid=sop_instance_uid).exists(),
        30,
        lambda: f"{sop_instance_uid} was not indexed within 30 s",
    )


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of each INSERT that indexes acknowledged instances."""
    sizes: list[int] = []
    index = IngestSession._index_acknowledged

    def counted(session: IngestSession, items: list[Any]) -> list[tuple[Study, int, int]]:
        sizes.append(len(items))
        return index(session, items)

    monkeypatch.setattr(IngestSession, "_index_acknowledged", counted)
    return sizes


@pytest.fixture
def index_fails(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every INSERT of acknowledged instances fails as if the database had gone; the number of tries."""
    tries: list[int] = []

    def failing(session: IngestSession, items: list[Any]) -> list[tuple[Study, int, int]]:
        tries.append(len(items))
        raise OperationalError("the database went away")

    monkeypatch.setattr(IngestSession, "_index_acknowledged", failing)
    return tries


def test_a_series_is_indexed_first_one_by_one_then_in_batches_after_the_answers(
    scp: ThreadedAssociationServer, modality: Institution, batches: list[int]
) -> None:
    datasets = slices(6)
    assert send(scp, datasets) == [Status.SUCCESS] * 6
    # The first instance made the series' rows; the other five were answered, then indexed together.
    assert sum(batches) == 5
    instances = {i.sop_instance_uid: i for i in Instance.objects.filter(institution=modality)}
    assert sorted(instances) == sorted(ds.SOPInstanceUID for ds in datasets)
    for ds in datasets:
        instance = instances[ds.SOPInstanceUID]
        assert instance.instance_number == ds.InstanceNumber
        assert instance.preview_status == "ready"
        assert stored_bytes(instance) == ds_bytes(ds)
    study = Study.objects.get(institution=modality)
    assert study.number_of_instances == 6
    assert Series.objects.get(study=study).number_of_instances == 6
    (event,) = AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse")
    assert event.detail["stored"] == 6
    assert not IngestJournal.objects.exists()  # the session closed with everything indexed


def ds_bytes(ds: Dataset) -> bytes:
    """The data set as pynetdicom sends it (what the archive keeps after its file meta)."""
    syntax = ds.file_meta.TransferSyntaxUID
    encoded = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    assert encoded is not None
    return encoded


def test_the_series_is_journaled_while_its_instances_are_answered_before_they_are_indexed(
    scp: ThreadedAssociationServer, modality: Institution
) -> None:
    first, second = slices(2)
    assoc = associate(scp, [(first.SOPClassUID, first.file_meta.TransferSyntaxUID)])
    assert assoc.send_c_store(first).Status == Status.SUCCESS
    assert not IngestJournal.objects.exists()  # the first is indexed before its answer
    assert assoc.send_c_store(second).Status == Status.SUCCESS
    wait_until_indexed(second.SOPInstanceUID)
    (entry,) = IngestJournal.objects.all()  # kept until the association closes
    assert entry.series == Series.objects.get(series_instance_uid=second.SeriesInstanceUID)
    assoc.release()
    wait_for_associations_to_end(scp)
    assert not IngestJournal.objects.exists()
    assert Instance.objects.filter(institution=modality).count() == 2


def test_a_resend_in_the_same_association_is_judged_by_what_the_session_knows(
    scp: ThreadedAssociationServer, modality: Institution, batches: list[int]
) -> None:
    first, second = slices(2)
    edited = pydicom.dcmread(testdata_path("CT_small.dcm"))
    edited.SOPInstanceUID, edited.InstanceNumber = second.SOPInstanceUID, second.InstanceNumber
    edited.ImageComments = "edited after sending"
    statuses = send(scp, [first, second, second, edited])
    assert statuses == [Status.SUCCESS, Status.SUCCESS, Status.SUCCESS, Status.CONFLICT]
    assert sum(batches) == 1  # the second only: the resend and the conflict were not indexed again
    instance = Instance.objects.get(sop_instance_uid=second.SOPInstanceUID)
    assert stored_bytes(instance) == ds_bytes(second)
    (event,) = AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse")
    assert (event.detail["stored"], event.detail["duplicate"], event.detail["conflict"]) == (2, 1, 1)
    keys = list(storage.walk(storage.DICOM_PREFIX))
    assert sorted(keys) == sorted(i.storage_key for i in Instance.objects.all())  # the conflict's bytes are gone


def test_an_instance_another_sender_stores_meanwhile_is_a_conflict_found_after_the_answer(
    scp: ThreadedAssociationServer, modality: Institution, caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = slices(3)
    assoc = associate(scp, [(first.SOPClassUID, first.file_meta.TransferSyntaxUID)])
    assert assoc.send_c_store(first).Status == Status.SUCCESS
    assert assoc.send_c_store(second).Status == Status.SUCCESS  # the session now knows the series' instances
    wait_until_indexed(second.SOPInstanceUID)  # so that the row written below is the only thing in flight
    # Another sender stores other bytes under the third's SOP Instance UID.
    stored = Instance.objects.get(sop_instance_uid=first.SOPInstanceUID)
    Instance.objects.create(
        institution=modality,
        study_id=stored.study_id,
        series_id=stored.series_id,
        sop_instance_uid=third.SOPInstanceUID,
        sop_class_uid=third.SOPClassUID,
        storage_key="dicom/elsewhere/third.dcm",
        size=1,
        sha256="0" * 64,
    )
    with caplog.at_level(logging.WARNING, logger="imaging.ingest"):
        assert assoc.send_c_store(third).Status == Status.SUCCESS  # answered before its row was tried
        assoc.release()
        wait_for_associations_to_end(scp)
    assert "acknowledged, then found to conflict" in caplog.text
    assert Instance.objects.get(sop_instance_uid=third.SOPInstanceUID).storage_key == "dicom/elsewhere/third.dcm"
    (event,) = AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse")
    assert (event.detail["stored"], event.detail["conflict"]) == (2, 1)
    others = Instance.objects.exclude(storage_key="dicom/elsewhere/third.dcm")
    assert sorted(storage.walk(storage.DICOM_PREFIX)) == sorted(i.storage_key for i in others)  # the third's are gone


def test_a_batch_that_fails_is_tried_again_when_the_association_closes(
    scp: ThreadedAssociationServer, modality: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = IngestSession._index_acknowledged
    tries: list[int] = []

    def fails_once(session: IngestSession, items: list[Any]) -> list[tuple[Study, int, int]]:
        tries.append(len(items))
        if len(tries) == 1:
            raise OperationalError("the database went away for a moment")
        return index(session, items)

    monkeypatch.setattr(IngestSession, "_index_acknowledged", fails_once)
    datasets = slices(4)
    assert send(scp, datasets) == [Status.SUCCESS] * 4
    assert len(tries) >= 2
    assert Instance.objects.filter(institution=modality, preview_status="ready").count() == 4
    assert Study.objects.get(institution=modality).number_of_instances == 4
    assert not IngestJournal.objects.exists()


def test_instances_left_unindexed_stay_in_the_journal_and_are_recovered_once_it_is_stale(
    scp: ThreadedAssociationServer, modality: Institution, index_fails: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = slices(3)
    assert send(scp, datasets)[:2] == [Status.SUCCESS, Status.SUCCESS]
    assert index_fails  # tried, failed, tried again at the close, failed
    # The second (at least) was answered and is durable at its key, without an index row.
    indexed = set(Instance.objects.values_list("sop_instance_uid", flat=True))
    assert datasets[0].SOPInstanceUID in indexed and datasets[1].SOPInstanceUID not in indexed
    assert len(list(storage.walk(storage.DICOM_PREFIX))) == 3
    (entry,) = IngestJournal.objects.all()

    monkeypatch.undo()  # the database is back
    assert recover_acknowledged() == []  # not stale yet: its session may be alive
    IngestJournal.objects.filter(pk=entry.pk).update(touched_at=timezone.now() - timedelta(minutes=5))
    results = recover_acknowledged()
    assert {r.sop_instance_uid for r in results} == {ds.SOPInstanceUID for ds in datasets} - indexed
    assert {r.outcome for r in results} == {"stored"}
    assert not IngestJournal.objects.exists()
    for ds in datasets:
        instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
        assert instance.preview_status == "ready"
        assert stored_bytes(instance) == ds_bytes(ds)
    assert len(list(storage.walk(storage.DICOM_PREFIX))) == 3  # indexed where they lay, not copied
    assert Study.objects.get(institution=modality).number_of_instances == 3
    assert AuditEvent.objects.filter(
        action="study.store", actor_label="recovery of acknowledged instances", detail__stored=len(results)
    ).exists()


def test_a_data_set_split_into_many_pdus_is_read_as_it_arrives(
    modality: Institution, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("imaging.dimse.MAX_PDU_BYTES", 4096)  # CT_small.dcm (39 KB) comes in ten PDUs
    server = start_scp(bind="127.0.0.1", port=0, ae_title="CLINICNET", poll_interval=0.02)
    try:
        datasets = slices(3)
        assert send(server, datasets) == [Status.SUCCESS] * 3
    finally:
        server.shutdown()
    for ds in datasets:
        assert stored_bytes(Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)) == ds_bytes(ds)


def test_each_series_of_an_association_is_journaled_and_the_rows_go_at_its_end(
    scp: ThreadedAssociationServer, modality: Institution
) -> None:
    # Two series on one association: each journaled, both rows gone at the end.
    first_series = slices(2)
    second_series = slices(4)[2:]
    for ds in second_series:
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.78"
    assert send(scp, [*first_series, *second_series]) == [Status.SUCCESS] * 4
    assert Series.objects.filter(study__institution=modality).count() == 2
    assert Instance.objects.filter(institution=modality).count() == 4
    assert not IngestJournal.objects.exists()
