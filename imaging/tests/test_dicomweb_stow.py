"""STOW-RS: status codes, failure reasons, the upload institution, CSRF, and a body read as a stream."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from django.test import Client
from pydicom.uid import generate_uid

from imaging.dicomweb.multipart import MalformedMultipart, MultipartReader
from imaging.models import Instance, Study
from imaging.testing import testdata_path
from institutions.models import Institution, Membership, Role, User
from institutions.tokens import token_create

BOUNDARY = "b0undary-for-tests"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def body_of(*parts: bytes, part_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def file_bytes(name: str = "CT_small.dcm", **attributes: str) -> bytes:
    if not attributes:
        return testdata_path(name).read_bytes()
    ds = pydicom.dcmread(testdata_path(name))
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if "SOPInstanceUID" in attributes:
        ds.file_meta.MediaStorageSOPInstanceUID = attributes["SOPInstanceUID"]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def token_client(user: User) -> Client:
    return Client(headers={"authorization": f"Bearer {token_create(user=user, name='stow')[1]}"})


def post(client: Client, body: bytes, url: str = "/dicomweb/studies", content_type: str = CONTENT_TYPE) -> object:
    return client.post(url, body, content_type=content_type, HTTP_ACCEPT="application/dicom+json")


def test_all_stored_is_200_with_referenced_sop_sequence(clinic: Institution, doctor: User) -> None:
    response = post(token_client(doctor), body_of(file_bytes(), file_bytes("MR_small.dcm")))
    assert response.status_code == 200  # type: ignore[attr-defined]
    data = response.json()  # type: ignore[attr-defined]
    referenced = data["00081199"]["Value"]
    assert len(referenced) == 2
    assert "00081198" not in data
    sop = pydicom.dcmread(testdata_path("CT_small.dcm")).SOPInstanceUID
    assert referenced[0]["00081155"]["Value"] == [sop]
    assert referenced[0]["00081190"]["Value"][0].startswith("http://testserver/dicomweb/studies/")
    assert Instance.objects.filter(institution=clinic).count() == 2
    assert Study.objects.get(instances__sop_instance_uid=sop).uploaded_by == doctor


def test_identical_resend_is_success_and_a_different_file_with_the_same_uid_is_0111(
    clinic: Institution, doctor: User
) -> None:
    client = token_client(doctor)
    assert post(client, body_of(file_bytes())).status_code == 200  # type: ignore[attr-defined]
    assert post(client, body_of(file_bytes())).status_code == 200  # type: ignore[attr-defined]
    changed = file_bytes(PatientComments="changed")
    response = post(client, body_of(changed, file_bytes("MR_small.dcm")))
    assert response.status_code == 202  # type: ignore[attr-defined]
    (failed,) = response.json()["00081198"]["Value"]  # type: ignore[attr-defined]
    assert failed["00081197"]["Value"] == [0x0111]
    conflict_only = post(client, body_of(changed))
    assert conflict_only.status_code == 409  # type: ignore[attr-defined]


def test_unreadable_parts_and_dicomdirs_fail_with_their_reasons(clinic: Institution, doctor: User) -> None:
    response = post(token_client(doctor), body_of(b"not dicom at all", testdata_path("DICOMDIR").read_bytes()))
    assert response.status_code == 409  # type: ignore[attr-defined]
    reasons = [item["00081197"]["Value"][0] for item in response.json()["00081198"]["Value"]]  # type: ignore[attr-defined]
    assert reasons == [0xC000, 0x0122]


def test_parts_of_another_study_fail_when_storing_into_a_named_study(clinic: Institution, doctor: User) -> None:
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    other = file_bytes(StudyInstanceUID=generate_uid(), SOPInstanceUID=generate_uid())
    response = post(token_client(doctor), body_of(file_bytes(), other), url=f"/dicomweb/studies/{ds.StudyInstanceUID}")
    assert response.status_code == 202  # type: ignore[attr-defined]
    data = response.json()  # type: ignore[attr-defined]
    assert data["00081190"]["Value"] == [f"http://testserver/dicomweb/studies/{ds.StudyInstanceUID}"]
    (failed,) = data["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xA900]
    assert len(data["00081199"]["Value"]) == 1


def test_wrong_content_types_are_415_and_malformed_bodies_400(clinic: Institution, doctor: User) -> None:
    client = token_client(doctor)
    assert post(client, file_bytes(), content_type="application/dicom").status_code == 415  # type: ignore[attr-defined]
    json_type = f'multipart/related; type="application/dicom+json"; boundary={BOUNDARY}'
    assert post(client, body_of(b"[]"), content_type=json_type).status_code == 415  # type: ignore[attr-defined]
    no_boundary = 'multipart/related; type="application/dicom"'
    assert post(client, body_of(file_bytes()), content_type=no_boundary).status_code == 400  # type: ignore[attr-defined]
    assert post(client, b"no parts here").status_code == 400  # type: ignore[attr-defined]
    assert post(client, f"--{BOUNDARY}--\r\n".encode()).status_code == 400  # type: ignore[attr-defined]
    cut = body_of(file_bytes())[:-40]
    assert post(client, cut).status_code == 400  # type: ignore[attr-defined]
    assert Instance.objects.count() == 0


def test_the_institution_parameter_picks_one_of_several_and_404_otherwise(
    clinic: Institution, other_clinic: Institution, doctor: User, outsider: User, reader: User
) -> None:
    Membership.objects.create(user=doctor, institution=other_clinic, role=Role.CLINIC_STAFF)
    client = token_client(doctor)
    assert post(client, body_of(file_bytes())).status_code == 404  # type: ignore[attr-defined]
    url = f"/dicomweb/studies?institution={other_clinic.code}"
    assert post(client, body_of(file_bytes()), url=url).status_code == 200  # type: ignore[attr-defined]
    assert Instance.objects.get().institution == other_clinic
    assert post(client, body_of(file_bytes()), url="/dicomweb/studies?institution=99999999").status_code == 404  # type: ignore[attr-defined]
    url = f"/dicomweb/studies?institution={clinic.code}"
    assert post(token_client(outsider), body_of(file_bytes()), url=url).status_code == 404  # type: ignore[attr-defined]


def test_session_stow_needs_the_csrf_token_and_token_stow_does_not(clinic: Institution, doctor: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(doctor, backend="institutions.backends.EmailOrUsernameBackend")
    assert post(browser, body_of(file_bytes())).status_code == 403  # type: ignore[attr-defined]
    browser.get("/profile/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/dicomweb/studies", body_of(file_bytes()), content_type=CONTENT_TYPE, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    tool = token_client(doctor)
    tool.handler.enforce_csrf_checks = True  # type: ignore[attr-defined]
    assert post(tool, body_of(file_bytes("MR_small.dcm"))).status_code == 200  # type: ignore[attr-defined]


def test_stow_is_audited_as_a_store_from_stow_rs(clinic: Institution, doctor: User) -> None:
    from clinicnet.audit.models import AuditEvent

    post(token_client(doctor), body_of(file_bytes()))
    event = AuditEvent.objects.filter(action="study.store").latest("id")
    assert event.detail["entry_point"] == "stow-rs"
    assert event.actor == doctor


class _Stream:
    """A request body of *size* bytes made on the fly, as a socket would deliver it."""

    def __init__(self, part: bytes, copies: int) -> None:
        self.chunks = iter([f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()] + [part] * copies)
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                chunk, self.tail = self.tail, b""
                if not chunk:
                    break
            self.buffer += chunk
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def test_the_multipart_reader_spools_a_large_part_without_holding_it(tmp_path: Path) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB
    tracemalloc.start()
    parts = []
    for part in MultipartReader(_Stream(block, 64), BOUNDARY, str(tmp_path)):  # a 64 MiB part
        parts.append(part.size)
        assert part.path.stat().st_size == 64 * len(block)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert parts == [64 * len(block)]
    assert peak < 8 * 1024 * 1024, peak
    assert list(tmp_path.iterdir()) == []  # spooled parts are removed


def test_the_multipart_reader_rejects_a_body_without_its_closing_boundary(tmp_path: Path) -> None:
    body = io.BytesIO(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nabc".encode())
    with pytest.raises(MalformedMultipart):
        list(MultipartReader(body, BOUNDARY, str(tmp_path)))


def test_a_full_spool_disk_is_503_and_keeps_nothing(
    clinic: Institution, doctor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("imaging.dicomweb.multipart.os.write", no_space)
    response = token_client(doctor).post(
        "/dicomweb/studies", body_of(file_bytes()), content_type=CONTENT_TYPE, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 503
    assert b"could not spool a part (No space left on device). Send it again later." in response.content
    assert Instance.objects.count() == 0
