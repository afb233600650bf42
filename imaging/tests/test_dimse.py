"""The DIMSE Storage SCP, driven by a real pynetdicom SCU over TCP against the server in a thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.db import connection
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_preamble
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, AllStoragePresentationContexts, _config
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from clinicnet.audit.models import AuditEvent
from imaging import dimse
from imaging.dicom.header import InvalidDicom, parse_header
from imaging.dimse import TRANSFER_SYNTAXES, Status, start_scp, stop_scp
from imaging.ingest import IngestSession, spool_dir
from imaging.models import Instance, Study
from imaging.testing import testdata_path
from imaging.tests.conftest import CALLING_AE, PIXEL_TESTDATA, wait_until
from institutions.models import Institution

pytestmark = pytest.mark.django_db(transaction=True)
STORAGE_SOP_CLASSES = {cx.abstract_syntax for cx in AllStoragePresentationContexts}


def associate(server: ThreadedAssociationServer, contexts: list[tuple[str, str]], ae_title: str = CALLING_AE):
    ae = AE(ae_title=ae_title)
    ae.maximum_pdu_size = 0
    for sop_class, syntax in contexts:
        ae.add_requested_context(sop_class, syntax)
    assoc = ae.associate("127.0.0.1", server.server_address[1], ae_title="CLINICNET")
    if assoc.is_established:
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return assoc


def wait_for_associations_to_end(server: ThreadedAssociationServer) -> None:
    """The SCP closes each association's ingest session (previews, audit) in its thread; wait for it."""
    wait_until(lambda: not server.active_associations, 60, lambda: server.active_associations)


def dataset_bytes(path: Path) -> bytes:
    """The bytes after the file meta information: what travels over the network unchanged."""
    with path.open("rb") as handle:
        read_preamble(handle, False)
        handle.seek(0)
        ds = pydicom.dcmread(handle, stop_before_pixels=True)
        meta_end = 132 + 12 + ds.file_meta.FileMetaInformationGroupLength
    return path.read_bytes()[meta_end:]


def stored_bytes(instance: Instance) -> bytes:
    from imaging import storage

    with storage.local_path(instance.storage_key) as path:
        return dataset_bytes(path)


def send_files(server: ThreadedAssociationServer, paths: list[Path]) -> dict[Path, Dataset | str]:
    """C-STORE each file byte for byte; returns the response status dataset, or why it could not be sent."""
    contexts = set()
    for path in paths:
        meta = pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta
        contexts.add((meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID))
    assoc = associate(server, sorted(contexts))
    assert assoc.is_established
    responses: dict[Path, Dataset | str] = {}
    try:
        for path in paths:
            try:
                responses[path] = assoc.send_c_store(path)
            except ValueError as exc:  # no accepted presentation context
                responses[path] = str(exc)
    finally:
        assoc.release()
    return responses


def test_c_echo_is_answered(scp: ThreadedAssociationServer, modality: Institution, caplog) -> None:
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian)])
    assert assoc.is_established
    assert assoc.send_c_echo().Status == Status.SUCCESS
    assoc.release()
    wait_for_associations_to_end(scp)
    logged = [r.getMessage() for r in caplog.records if r.name == "imaging.dimse"]
    assert f"DIMSE: association from AE '{CALLING_AE}' at 127.0.0.1 for institution {modality.code}" in logged
    assert any("released after" in line and "nothing received" in line for line in logged)


def test_an_unknown_ae_title_is_refused_at_association_time(
    scp: ThreadedAssociationServer, clinic: Institution
) -> None:
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian)], ae_title="STRANGER")
    assert assoc.is_rejected
    reply = assoc.acceptor.primitive
    # rejected-permanent, DICOM UL service-user, calling-AE-title-not-recognized
    assert (reply.result, reply.result_source, reply.diagnostic) == (0x01, 0x01, 0x03)
    event = AuditEvent.objects.get(action="dimse.association_rejected")
    assert event.actor_label == "AE STRANGER"
    assert event.detail["reason"] == "unknown calling AE title"


def test_an_inactive_institution_is_refused_at_association_time(
    scp: ThreadedAssociationServer, modality: Institution
) -> None:
    modality.is_active = False
    modality.save()
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian)])
    assert assoc.is_rejected
    reply = assoc.acceptor.primitive
    assert (reply.result, reply.result_source, reply.diagnostic) == (0x01, 0x01, 0x01)


def test_every_real_file_with_pixel_data_goes_through_c_store(
    scp: ThreadedAssociationServer, modality: Institution, monkeypatch
) -> None:
    # Send the files' own bytes, not a re-encoding, so the archive's copy can be compared byte for byte.
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    sendable, without_meta = [], []
    for path in PIXEL_TESTDATA:
        meta = pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta
        (sendable if "TransferSyntaxUID" in meta else without_meta).append(path)
    before = set(os.listdir(spool_dir()))
    responses = send_files(scp, sendable)
    wait_for_associations_to_end(scp)

    unsent = {path.name: reason for path, reason in responses.items() if isinstance(reason, str)}
    # Only the retired Ultrasound Image Storage, which pynetdicom has no storage class for, cannot be offered.
    assert sorted(unsent) == ["color-pl.dcm", "color-px.dcm"]
    assert all("1.2.840.10008.5.1.4.1.1.6" not in STORAGE_SOP_CLASSES for _ in unsent)
    stored = {i.sop_instance_uid: i for i in Instance.objects.filter(institution=modality).select_related("study")}
    first_success: set[str] = set()
    for path, status in responses.items():
        if isinstance(status, str):
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if status.Status == Status.SUCCESS:
            instance = stored[ds.SOPInstanceUID]
            assert instance.study.study_instance_uid == ds.StudyInstanceUID
            assert instance.sop_class_uid == ds.SOPClassUID
            assert instance.transfer_syntax_uid == ds.file_meta.TransferSyntaxUID
            if ds.SOPInstanceUID not in first_success:  # this file's bytes are the ones stored
                first_success.add(ds.SOPInstanceUID)
                assert stored_bytes(instance) == dataset_bytes(path), path.name
        elif status.Status == Status.CONFLICT:
            assert status.ErrorComment, path.name
            assert ds.SOPInstanceUID in stored or Study.objects.filter(study_instance_uid=ds.StudyInstanceUID)
        else:
            assert status.Status == Status.CANNOT_UNDERSTAND, (path.name, status)
            assert status.ErrorComment, path.name
            with pytest.raises(InvalidDicom):
                parse_header(path)
    assert len(first_success) == len(stored)
    # Most of the files share SOP Instance UIDs (one image in many encodings): duplicates or conflicts.
    successes = [s for s in responses.values() if not isinstance(s, str) and s.Status == Status.SUCCESS]
    conflicts = [s for s in responses.values() if not isinstance(s, str) and s.Status == Status.CONFLICT]
    assert len(successes) + len(conflicts) == len(sendable) - len(unsent)
    assert len(stored) > 60
    # Every stored instance got its preview, or a reason why not.
    for instance in stored.values():
        assert instance.preview_status in {"ready", "none", "failed"}, instance
        assert instance.preview_status == "ready" or instance.preview_error.startswith("no preview: ")
    # One ingest session for the association: audited per study, with the entry point and the peer.
    events = AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse")
    assert sum(e.detail.get("stored", 0) for e in events) == len(stored)
    assert {(e.actor_label, e.client_address) for e in events} == {(f"AE {CALLING_AE}", "127.0.0.1")}
    # Nothing left behind in the spool (its files are removed in the background).
    wait_until(lambda: set(os.listdir(spool_dir())) == before, 10, lambda: set(os.listdir(spool_dir())) - before)
    assert without_meta == [testdata_path("OT-PAL-8-face.dcm")]


def test_a_file_without_file_meta_is_sent_as_a_dataset(scp: ThreadedAssociationServer, modality: Institution) -> None:
    ds = pydicom.dcmread(testdata_path("OT-PAL-8-face.dcm"), force=True)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    assoc = associate(scp, [(ds.SOPClassUID, ImplicitVRLittleEndian)])
    assert assoc.send_c_store(ds).Status == Status.SUCCESS
    assoc.release()
    wait_for_associations_to_end(scp)
    instance = Instance.objects.get(institution=modality)
    assert instance.sop_instance_uid == ds.SOPInstanceUID
    assert instance.preview_status == "ready"


def test_duplicates_succeed_and_conflicts_and_broken_objects_fail_with_a_reason(
    scp: ThreadedAssociationServer, modality: Institution, tmp_path: Path
) -> None:
    original = pydicom.dcmread(testdata_path("CT_small.dcm"))
    edited = pydicom.dcmread(testdata_path("CT_small.dcm"))
    edited.SeriesDescription = "edited after sending"
    broken = pydicom.dcmread(testdata_path("CT_small.dcm"))
    broken.SOPInstanceUID = "1.2.3.4.5.6"
    del broken.StudyInstanceUID
    assoc = associate(scp, [(original.SOPClassUID, original.file_meta.TransferSyntaxUID)])
    first, again, conflict, invalid = (assoc.send_c_store(ds) for ds in (original, original, edited, broken))
    assoc.release()
    wait_for_associations_to_end(scp)
    assert (first.Status, again.Status) == (Status.SUCCESS, Status.SUCCESS)
    assert conflict.Status == Status.CONFLICT == 0xC001
    assert conflict.ErrorComment == "an instance with this SOP Instance UID is already stored with di"
    assert invalid.Status == Status.CANNOT_UNDERSTAND == 0xC000
    assert invalid.ErrorComment.startswith("missing Study Instance UID")
    assert Instance.objects.filter(institution=modality).count() == 1
    (event,) = AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse")
    assert (event.detail["stored"], event.detail["duplicate"], event.detail["conflict"]) == (1, 1, 1)


def test_an_aborted_association_still_closes_its_session(scp: ThreadedAssociationServer, modality: Institution) -> None:
    ds = pydicom.dcmread(testdata_path("MR_small.dcm"))
    assoc = associate(scp, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)])
    assert assoc.send_c_store(ds).Status == Status.SUCCESS
    assoc.abort()
    wait_for_associations_to_end(scp)
    instance = Instance.objects.get(institution=modality)
    assert instance.preview_status == "ready"  # previews were scheduled when the session closed
    assert AuditEvent.objects.filter(action="study.store", object_id=ds.StudyInstanceUID).exists()


def test_stopping_waits_for_open_associations_and_for_previews_rendered_in_this_process(
    modality: Institution, settings: Any, slow_previews: None
) -> None:
    # The embedded default renders previews in the SCP's own threads: stopping the
    # service must not cut them off (nor the association still sending).
    settings.TASK_MODE = "thread"
    server = start_scp(bind="127.0.0.1", port=0, ae_title="CLINICNET", poll_interval=0.02)
    assoc = associate(server, [(CTImageStorage, ExplicitVRLittleEndian)])
    assert assoc.send_c_store(testdata_path("CT_small.dcm")).Status == Status.SUCCESS
    releasing = threading.Timer(0.3, assoc.release)  # still open when the stop begins
    releasing.start()
    try:
        assert stop_scp(server, wait_seconds=30) == 0
    finally:
        releasing.join()
    instance = Instance.objects.get(institution=modality)
    assert instance.preview_status == Instance.PreviewStatus.READY


def test_stopping_gives_up_on_an_association_that_outlasts_the_wait(modality: Institution) -> None:
    server = start_scp(bind="127.0.0.1", port=0, ae_title="CLINICNET", poll_interval=0.02)
    assoc = associate(server, [(Verification, ExplicitVRLittleEndian)])
    try:
        assert stop_scp(server, wait_seconds=0.2) == 1
    finally:
        assoc.release()
    wait_for_associations_to_end(server)


def test_nagle_is_off_on_the_scp_side_of_the_connection(scp: ThreadedAssociationServer, modality: Institution) -> None:
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian)])
    (acceptor,) = scp.active_associations
    assert acceptor.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    assoc.release()


def test_the_association_threads_are_woken_not_left_to_their_idle_wait(
    scp: ThreadedAssociationServer, modality: Institution, monkeypatch
) -> None:
    # With an idle wait of 3 s, every step that waited for it (a poll of the socket,
    # a queued response, a decoded request) would take seconds; woken, a C-ECHO and a
    # C-STORE are answered at once. Only the release is looked for between messages.
    monkeypatch.setattr(dimse, "IDLE_WAIT_SECONDS", 3.0)
    ds = pydicom.dcmread(testdata_path("MR_small.dcm"))
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian), (ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)])
    assert assoc.is_established
    started = time.monotonic()
    assert assoc.send_c_echo().Status == Status.SUCCESS
    assert assoc.send_c_store(ds).Status == Status.SUCCESS
    assert assoc.send_c_echo().Status == Status.SUCCESS
    assert time.monotonic() - started < 2.0
    assoc.release()
    assert assoc.is_released
    wait_for_associations_to_end(scp)


def test_a_silent_peer_is_dropped_after_the_network_timeout(
    scp: ThreadedAssociationServer, modality: Institution, caplog
) -> None:
    scp.ae.network_timeout = 0.3
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian)])
    assert assoc.is_established
    wait_until(lambda: not assoc.is_established, 10, lambda: "the association is still established")
    assert assoc.is_aborted
    wait_for_associations_to_end(scp)
    assert any("network timeout" in r.getMessage() for r in caplog.records if r.name == "imaging.dimse")


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "syntax"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5", "1.2.840.10008.1.2.1"),  # an odd-length UID
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4.56", "1.2.840.10008.1.2.4.50"),
    ],
)
def test_the_part10_head_is_what_pydicom_writes_for_pynetdicoms_file_meta(
    sop_class: str, sop_instance: str, syntax: str
) -> None:
    from pynetdicom.dsutils import create_file_meta, encode_file_meta

    meta = create_file_meta(sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax)
    assert dimse.part10_head(sop_class, sop_instance, syntax) == b"\0" * 128 + b"DICM" + encode_file_meta(meta)


def test_the_scp_accepts_the_common_transfer_syntaxes(scp: ThreadedAssociationServer, modality: Institution) -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    assoc = associate(scp, [(ct, syntax) for syntax in TRANSFER_SYNTAXES])
    accepted = {cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
    assoc.release()
    assert accepted == set(TRANSFER_SYNTAXES)
    assert {
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.5",
    } <= accepted


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL backends")
def test_each_association_closes_its_database_connections(
    scp: ThreadedAssociationServer, modality: Institution, monkeypatch
) -> None:
    monkeypatch.setattr("imaging.dimse.FLUSH_EVERY", 1)  # the closing thread's connection too

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = backends()
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    for association in range(3):
        assoc = associate(scp, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)])
        for number in (1, 2):
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{association}.{number}"
            assert assoc.send_c_store(ds).Status == Status.SUCCESS
        assoc.release()
        wait_for_associations_to_end(scp)
    assert backends() == before


def test_a_long_association_starts_previews_as_it_goes(
    scp: ThreadedAssociationServer, modality: Institution, monkeypatch
) -> None:
    monkeypatch.setattr("imaging.dimse.FLUSH_EVERY", 2)
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    assoc = associate(scp, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID), (Verification, ExplicitVRLittleEndian)])
    for number in (1, 2):
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}"
        assert assoc.send_c_store(ds).Status == Status.SUCCESS
    # Still associated: the first two are previewed and audited after the second response went out
    # (beside the association; on SQLite in its thread, before the C-ECHO is answered).
    assert assoc.send_c_echo().Status == Status.SUCCESS
    assert assoc.is_established
    wait_until(lambda: AuditEvent.objects.filter(action="study.store").exists(), 30, lambda: "no study.store event")
    assert [i.preview_status for i in Instance.objects.filter(institution=modality)] == ["ready", "ready"]
    assert AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse").count() == 1
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.3"
    assert assoc.send_c_store(ds).Status == Status.SUCCESS
    assoc.release()
    wait_for_associations_to_end(scp)
    assert Instance.objects.filter(institution=modality, preview_status="ready").count() == 3
    assert AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse").count() == 2


@pytest.mark.skipif(connection.vendor == "sqlite", reason="on SQLite the periodic close runs in the association thread")
def test_the_next_instance_does_not_wait_for_the_periodic_close(
    scp: ThreadedAssociationServer, modality: Institution, monkeypatch
) -> None:
    monkeypatch.setattr("imaging.dimse.FLUSH_EVERY", 1)
    gate = threading.Event()
    hand_over = IngestSession.hand_over

    def held_hand_over(session: IngestSession) -> Callable[[], None]:
        rest = hand_over(session)

        def finish() -> None:
            assert gate.wait(30)
            rest()

        return finish

    monkeypatch.setattr(IngestSession, "hand_over", held_hand_over)
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    assoc = associate(scp, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)])
    for number in (1, 2):
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}"
        assert assoc.send_c_store(ds).Status == Status.SUCCESS  # the second while the first close is held
    assert not AuditEvent.objects.filter(action="study.store").exists()
    gate.set()
    assoc.release()
    wait_for_associations_to_end(scp)
    # The association's end waited for both periodic closes, and its own had nothing left.
    assert AuditEvent.objects.filter(action="study.store", detail__entry_point="dimse").count() == 2
    assert Study.objects.get(institution=modality).number_of_instances == 2


def test_a_data_set_over_the_size_limit_is_refused_and_the_association_goes_on(
    scp: ThreadedAssociationServer, modality: Institution, settings
) -> None:
    settings.DICOM_MAX_FILE_BYTES = 4000  # CT_small.dcm is 39 KB
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    assoc = associate(scp, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID), (Verification, ExplicitVRLittleEndian)])
    status = assoc.send_c_store(ds)
    assert status.Status == Status.OUT_OF_RESOURCES
    assert "over the limit of 4000 bytes per file" in status.ErrorComment
    assert assoc.send_c_echo().Status == Status.SUCCESS  # still associated
    assoc.release()
    wait_for_associations_to_end(scp)
    assert not Instance.objects.exists()


def test_a_pdu_on_a_context_that_was_not_accepted_aborts_the_association(
    scp: ThreadedAssociationServer, modality: Institution, caplog
) -> None:
    assoc = associate(scp, [(Verification, ExplicitVRLittleEndian)])
    item = bytes([0, 0, 0, 4, 99, 0x03, 0, 0])  # a PDV on presentation context 99
    assoc.dul.socket.send(bytes([0x04, 0, 0, 0, 0, len(item)]) + item)
    wait_until(lambda: assoc.is_aborted, 10, lambda: "the association was not aborted")
    wait_for_associations_to_end(scp)
    assert any("presentation context 99 was not accepted" in r.getMessage() for r in caplog.records)


def test_a_request_other_than_c_store_and_c_echo_is_answered_unrecognized(
    scp: ThreadedAssociationServer, modality: Institution
) -> None:
    from pynetdicom.dimse_primitives import C_FIND
    from pynetdicom.dsutils import encode

    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    assoc = associate(scp, [(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)])
    (context,) = assoc.accepted_contexts
    request = C_FIND()
    request.MessageID = 5
    request.AffectedSOPClassUID = ds.SOPClassUID
    request.Priority = 2
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    request.Identifier = BytesIO(encode(query, True, True))
    # As pynetdicom's own send_c_* do: pause the requestor's reactor, send, wait for the answer.
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.001)
    try:
        assoc.dimse.send_msg(request, context.context_id)
        _context_id, response = assoc.dimse.get_msg(block=True)
    finally:
        assoc._reactor_checkpoint.set()
    assert (response.MessageIDBeingRespondedTo, response.Status) == (5, Status.UNRECOGNIZED_OPERATION)
    assoc.release()
