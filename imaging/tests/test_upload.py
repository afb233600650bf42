"""Web upload and the REST API: one file, zips, bad requests, results per file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from imaging.models import Instance, Study
from imaging.testing import testdata_path
from institutions.models import Institution, Membership, Role, User
from institutions.testing import anonymous_client, client_for

pytestmark = pytest.mark.django_db


def upload(client, name: str, data: bytes, **extra: str):
    return client.post("/upload/files/", {"file": SimpleUploadedFile(name, data), **extra})


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_upload_page_is_there_for_members(clerk: User) -> None:
    page = client_for(clerk).get("/upload/")
    assert page.status_code == 200
    assert 'id="dropzone"' in page.content.decode()
    assert "webkitdirectory" in page.content.decode()


def test_a_clerk_uploads_a_file_and_gets_its_result(clerk: User, clinic: Institution) -> None:
    response = upload(client_for(clerk), "CT_small.dcm", testdata_path("CT_small.dcm").read_bytes())
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["outcome"] == "stored"
    assert result["name"] == "CT_small.dcm"
    assert Study.objects.get().institution == clinic


def test_a_zipped_cd_answers_for_every_file(clerk: User) -> None:
    data = zip_of(
        {
            "DICOMDIR": testdata_path("DICOMDIR").read_bytes(),
            "DICOM/IM0001": testdata_path("CT_small.dcm").read_bytes(),
            "DICOM/IM0002": testdata_path("MR_small.dcm").read_bytes(),
            "README.TXT": b"Patient CD made by the clinic's PACS",
        }
    )
    response = upload(client_for(clerk), "cd.zip", data)
    assert response.status_code == 200
    outcomes = {r["name"]: (r["outcome"], r["reason"]) for r in response.json()["results"]}
    assert outcomes["cd.zip/DICOM/IM0001"][0] == "stored"
    assert outcomes["cd.zip/DICOM/IM0002"][0] == "stored"
    assert outcomes["cd.zip/DICOMDIR"][0] == "skipped"
    assert outcomes["cd.zip/README.TXT"] == ("rejected", "not a DICOM file (no DICM header and no DICOM identifiers)")
    assert Instance.objects.count() == 2


def test_the_relative_path_of_a_folder_upload_is_kept(clerk: User) -> None:
    response = upload(
        client_for(clerk), "IM0001", testdata_path("CT_small.dcm").read_bytes(), relative_path="CD/DICOM/IM0001"
    )
    assert response.json()["results"][0]["name"] == "CD/DICOM/IM0001"


def test_bad_requests_get_a_clear_4xx(clerk: User) -> None:
    client = client_for(clerk)
    empty = client.post("/upload/files/", {})
    assert empty.status_code == 400
    assert empty.json() == {"error": "No file was sent."}
    wrong_type = client.post("/upload/files/", data=b"raw bytes", content_type="application/octet-stream")
    assert wrong_type.status_code == 415
    assert "multipart/form-data" in wrong_type.json()["error"]
    assert client.get("/upload/files/").status_code == 405


def test_an_empty_file_is_rejected_per_file(clerk: User) -> None:
    (result,) = upload(client_for(clerk), "empty.dcm", b"").json()["results"]
    assert (result["outcome"], result["reason"]) == ("rejected", "the file is empty")


def test_nobody_uploads_for_another_institution(clerk: User, other_clinic: Institution) -> None:
    response = upload(
        client_for(clerk), "CT_small.dcm", testdata_path("CT_small.dcm").read_bytes(), institution=other_clinic.code
    )
    assert response.status_code == 404
    assert not Instance.objects.exists()


def test_someone_with_two_institutions_must_name_one(
    clerk: User, clinic: Institution, other_clinic: Institution
) -> None:
    Membership.objects.create(user=clerk, institution=other_clinic, role=Role.CLINIC_STAFF)
    client = client_for(clerk)
    data = testdata_path("CT_small.dcm").read_bytes()
    assert upload(client, "CT_small.dcm", data).status_code == 404
    assert upload(client, "CT_small.dcm", data, institution=other_clinic.code).status_code == 200
    assert Study.objects.get().institution == other_clinic


def test_anonymous_uploads_are_refused() -> None:
    response = upload(anonymous_client(), "CT_small.dcm", b"x")
    assert response.status_code == 302


# --- REST API -----------------------------------------------------------------------


def test_the_api_takes_several_files_and_lists_studies(doctor: User) -> None:
    client = client_for(doctor)
    response = client.post(
        "/api/v1/uploads/",
        {
            "file": [
                SimpleUploadedFile("a.dcm", testdata_path("CT_small.dcm").read_bytes()),
                SimpleUploadedFile("b.dcm", testdata_path("MR_small.dcm").read_bytes()),
                SimpleUploadedFile("c.txt", b"nope"),
            ]
        },
    )
    assert response.status_code == 200
    assert [r["outcome"] for r in response.json()["results"]] == ["stored", "stored", "rejected"]
    listing = client.get("/api/v1/studies/?modality=CT").json()
    assert listing["count"] == 1
    (study,) = listing["results"]
    assert study["modalities"] == ["CT"]
    assert study["patient_id"] == "1CT1"
    detail = client.get(f"/api/v1/studies/{study['study_instance_uid']}/").json()
    assert detail["series"][0]["modality"] == "CT"


def test_the_api_answers_bad_requests_with_reasons(doctor: User) -> None:
    client = client_for(doctor)
    no_file = client.post("/api/v1/uploads/", {})
    assert no_file.status_code == 400
    assert "multipart field “file”" in no_file.json()["detail"]
    assert client.post("/api/v1/uploads/", b"{}", content_type="application/json").status_code == 415
    assert client.get("/api/v1/studies/?limit=abc").status_code == 400
    assert client.get("/api/v1/studies/1.2.3.4/").status_code == 404


def test_the_api_needs_authentication() -> None:
    assert anonymous_client().get("/api/v1/studies/").status_code in (401, 403)


def test_upload_streams_large_files_to_disk(settings, clerk: User, tmp_path: Path) -> None:
    # Over FILE_UPLOAD_MAX_MEMORY_SIZE, Django writes the upload to the spool
    # folder; the ingest reads it from there without a second copy.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = upload(client_for(clerk), "CT_small.dcm", testdata_path("CT_small.dcm").read_bytes())
    assert response.json()["results"][0]["outcome"] == "stored"
