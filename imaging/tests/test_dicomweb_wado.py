"""WADO-RS and WADO-URI: negotiation, frames, bulk data, metadata, caching, gzip, rendered, audit."""

from __future__ import annotations

import gzip
import io
import json

import pydicom
import pytest
from django.test import Client
from PIL import Image
from pydicom.encaps import get_frame

from clinicnet.audit.models import AuditEvent
from imaging.models import Instance, Study
from imaging.testing import make_study, testdata_path
from institutions.models import Institution, User
from institutions.testing import client_for


def _instance(study: Study) -> Instance:
    return Instance.objects.select_related("series").filter(study=study).order_by("id").first()  # type: ignore[return-value]


def _base(study: Study) -> str:
    instance = _instance(study)
    return (
        f"/dicomweb/studies/{study.study_instance_uid}/series/{instance.series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )


def _parts(response: object) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related response."""
    content_type = response["Content-Type"]  # type: ignore[index]
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
    parts = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _sep, content = chunk.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().strip().split("\r\n"))
        parts.append((headers["Content-Type"], content.removesuffix(b"\r\n")))
    return parts


@pytest.fixture
def ct(clinic: Institution) -> Study:
    return make_study(clinic, "CT_small.dcm")


@pytest.fixture
def jpeg2000(clinic: Institution) -> Study:
    return make_study(clinic, "MR_small_jp2klossless.dcm")


def test_uncompressed_frames_are_the_stored_bytes(ct: Study, doctor: User) -> None:
    response = client_for(doctor).get(f"{_base(ct)}/frames/1")
    assert response["Content-Type"].startswith('multipart/related; type="application/octet-stream"')
    ((part_type, frame),) = _parts(response)
    assert part_type == "application/octet-stream"
    assert frame == pydicom.dcmread(testdata_path("CT_small.dcm")).PixelData


def test_multi_frame_lists_come_back_in_order(clinic: Institution, doctor: User) -> None:
    study = make_study(clinic, "emri_small.dcm")  # 10 frames, uncompressed
    ds = pydicom.dcmread(testdata_path("emri_small.dcm"))
    size = ds.Rows * ds.Columns * 2
    parts = _parts(client_for(doctor).get(f"{_base(study)}/frames/3,1,10"))
    assert [body for _type, body in parts] == [ds.PixelData[i * size : (i + 1) * size] for i in (2, 0, 9)]


def test_compressed_frames_go_as_stored_when_allowed_and_decoded_when_not(jpeg2000: Study, doctor: User) -> None:
    client = client_for(doctor)
    ds = pydicom.dcmread(testdata_path("MR_small_jp2klossless.dcm"))
    url = f"{_base(jpeg2000)}/frames/1"
    as_stored = client.get(url, HTTP_ACCEPT='multipart/related; type="application/octet-stream"; transfer-syntax=*')
    ((part_type, frame),) = _parts(as_stored)
    assert part_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.90"
    assert frame == get_frame(ds.PixelData, 0, number_of_frames=1)
    jp2 = client.get(url, HTTP_ACCEPT='multipart/related; type="image/jp2"')
    assert _parts(jp2)[0] == ("image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90", frame)
    decoded = client.get(url, HTTP_ACCEPT='multipart/related; type="application/octet-stream"')
    ((part_type, native),) = _parts(decoded)
    assert part_type == "application/octet-stream"
    assert native == ds.pixel_array.astype("<i2").tobytes()
    single = client.get(url, HTTP_ACCEPT="application/octet-stream")
    assert single["Content-Type"] == "application/octet-stream"
    assert single.content == native
    assert client.get(url, HTTP_ACCEPT='multipart/related; type="image/jls"').status_code == 406


def test_frames_that_do_not_exist_answer_404_and_bad_lists_400(ct: Study, doctor: User) -> None:
    client = client_for(doctor)
    assert client.get(f"{_base(ct)}/frames/2").status_code == 404
    assert client.get(f"{_base(ct)}/frames/0").status_code == 400
    assert client.get(f"{_base(ct)}/frames/a,b").status_code == 400


def test_retrieve_streams_files_as_stored_or_transcoded(jpeg2000: Study, doctor: User) -> None:
    client = client_for(doctor)
    url = _base(jpeg2000)
    response = client.get(url)
    assert response.streaming
    ((part_type, body),) = _parts(response)
    assert part_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90"
    assert body == testdata_path("MR_small_jp2klossless.dcm").read_bytes()
    explicit = client.get(
        url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'
    )
    ((part_type, body),) = _parts(explicit)
    assert part_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    ds = pydicom.dcmread(io.BytesIO(body))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert ds.SOPInstanceUID == _instance(jpeg2000).sop_instance_uid
    refused = client.get(
        url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    )
    assert refused.status_code == 406
    assert "application/dicom" in refused.content.decode()


def test_instances_are_immutable_so_etag_and_last_modified_answer_304(ct: Study, doctor: User) -> None:
    client = client_for(doctor)
    instance = _instance(ct)
    first = client.get(_base(ct))
    assert first["ETag"] == f'"{instance.sha256}"'
    assert first["Cache-Control"] == "private, no-cache"
    again = client.get(_base(ct), HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert client.get(_base(ct), HTTP_IF_MODIFIED_SINCE=first["Last-Modified"]).status_code == 304
    metadata = client.get(f"/dicomweb/studies/{ct.study_instance_uid}/metadata")
    assert (
        client.get(
            f"/dicomweb/studies/{ct.study_instance_uid}/metadata", HTTP_IF_NONE_MATCH=metadata["ETag"]
        ).status_code
        == 304
    )
    frame = client.get(f"{_base(ct)}/frames/1")
    assert client.get(f"{_base(ct)}/frames/1", HTTP_IF_NONE_MATCH=frame["ETag"]).status_code == 304


def test_metadata_has_absolute_bulk_data_uris_and_is_gzipped_for_clients_that_accept_it(
    clinic: Institution, doctor: User, settings: object
) -> None:
    settings.ALLOWED_HOSTS = ["pacs.example.org", "testserver"]  # type: ignore[attr-defined]
    study = make_study(clinic, "emri_small.dcm")
    client = client_for(doctor)
    url = f"/dicomweb/studies/{study.study_instance_uid}/metadata"
    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate", HTTP_HOST="pacs.example.org")
    assert response["Content-Encoding"] == "gzip"
    assert response["Content-Type"] == "application/dicom+json"
    (dataset,) = json.loads(gzip.decompress(response.content))
    assert dataset["7FE00010"]["BulkDataURI"] == f"http://pacs.example.org{_base(study)}/bulkdata/7FE00010"
    plain = client.get(url)
    assert "Content-Encoding" not in plain
    assert json.loads(plain.content)[0]["00080018"] == dataset["00080018"]
    series_uid = _instance(study).series.series_instance_uid
    assert len(client.get(f"/dicomweb/studies/{study.study_instance_uid}/series/{series_uid}/metadata").json()) == 1
    assert client.get(url, HTTP_ACCEPT="application/dicom").status_code == 406


def test_bulk_data_uris_of_nested_values_resolve(clinic: Institution, doctor: User) -> None:
    study = make_study(clinic, "emri_small.dcm")
    client = client_for(doctor)
    (dataset,) = client.get(f"/dicomweb/studies/{study.study_instance_uid}/metadata").json()
    uris = []

    def collect(item: dict) -> None:
        for element in item.values():
            if "BulkDataURI" in element:
                uris.append(element["BulkDataURI"])
            for child in element.get("Value", []) if element.get("vr") == "SQ" else []:
                collect(child)

    collect(dataset)
    assert uris
    for uri in uris:
        response = client.get(uri.removeprefix("http://testserver"))
        assert response.status_code == 200, uri
        assert _parts(response)[0][1]
    assert client.get(f"{_base(study)}/bulkdata/00100010").status_code == 404
    assert client.get(f"{_base(study)}/bulkdata/zz").status_code == 404


def test_rendered_and_thumbnails_take_window_viewport_quality_and_media_type(ct: Study, doctor: User) -> None:
    client = client_for(doctor)
    jpeg = client.get(f"{_base(ct)}/rendered", {"window": "40,400", "viewport": "64,64", "quality": "80"})
    assert jpeg["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (64, 64)
    png = client.get(f"{_base(ct)}/frames/1/rendered", HTTP_ACCEPT="image/png")
    assert Image.open(io.BytesIO(png.content)).format == "PNG"
    thumbnail = client.get(f"/dicomweb/studies/{ct.study_instance_uid}/thumbnail")
    assert thumbnail.status_code == 200
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 128
    parts = _parts(client.get(f"/dicomweb/studies/{ct.study_instance_uid}/rendered"))
    assert [part_type for part_type, _body in parts] == ["image/jpeg"]
    assert client.get(f"{_base(ct)}/rendered", {"window": "40"}).status_code == 400
    assert client.get(f"{_base(ct)}/rendered", {"viewport": "0,10"}).status_code == 400
    assert client.get(f"{_base(ct)}/rendered", {"quality": "101"}).status_code == 400
    assert client.get(f"{_base(ct)}/rendered", HTTP_ACCEPT="image/gif").status_code == 406


def test_a_plain_rendered_frame_is_the_stored_preview(ct: Study, doctor: User) -> None:
    from imaging import storage

    instance = _instance(ct)
    assert instance.preview_status == Instance.PreviewStatus.READY
    with storage.open_file(storage.preview_key(instance.storage_key, 0)) as handle:
        preview = handle.read()
    # Previews are PREVIEW_SIZE (512) on their longest side: this 128² slice scaled up.
    assert client_for(doctor).get(f"{_base(ct)}/rendered", {"viewport": "512,512"}).content == preview
    assert client_for(doctor).get(f"{_base(ct)}/rendered").content != preview


def test_wado_uri_serves_the_file_and_rendered_images(ct: Study, doctor: User) -> None:
    instance = _instance(ct)
    params = {
        "requestType": "WADO",
        "studyUID": ct.study_instance_uid,
        "seriesUID": instance.series.series_instance_uid,
        "objectUID": instance.sop_instance_uid,
    }
    client = client_for(doctor)
    dicom = client.get("/dicomweb/wado", {**params, "contentType": "application/dicom"})
    assert dicom["Content-Type"] == "application/dicom"
    assert b"".join(dicom.streaming_content) == testdata_path("CT_small.dcm").read_bytes()
    jpeg = client.get("/dicomweb/wado", {**params, "windowCenter": "40", "windowWidth": "400", "rows": "64"})
    assert jpeg["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (64, 64)
    assert client.get("/dicomweb/wado", {**params, "contentType": "image/png"})["Content-Type"] == "image/png"
    assert client.get("/dicomweb/wado", {**params, "contentType": "text/html"}).status_code == 406
    assert client.get("/dicomweb/wado", {**params, "requestType": "X"}).status_code == 400
    assert client.get("/dicomweb/wado", {**params, "frameNumber": "2"}).status_code == 404
    assert client.get("/dicomweb/wado", {**params, "anonymize": "yes"}).status_code == 400


def test_retrieves_are_audited_once_per_kind_of_read(ct: Study, doctor: User) -> None:
    # Frames and metadata are one kind (looking at the images), the DICOM files another
    # (test_dicomweb_retrieve_audit.py has the details of the window).
    client = client_for(doctor)
    before = AuditEvent.objects.filter(action="study.retrieve").count()
    client.get(f"{_base(ct)}/frames/1")
    client.get(f"/dicomweb/studies/{ct.study_instance_uid}/metadata")
    client.get(f"/dicomweb/studies/{ct.study_instance_uid}")
    events = list(AuditEvent.objects.filter(action="study.retrieve").order_by("id"))[before:]
    assert [event.detail["resource"] for event in events] == ["frames", "study"]
    assert {event.object_id for event in events} == {ct.study_instance_uid}
    assert {event.actor_id for event in events} == {doctor.pk}
    assert events[0].institution_id == ct.institution_id


def test_head_and_unsupported_methods(ct: Study, doctor: User) -> None:
    client = client_for(doctor)
    head = client.head(f"{_base(ct)}/metadata")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head["Content-Length"]) > 0
    streamed = client.head(_base(ct))
    assert streamed.status_code == 200
    assert b"".join(streamed.streaming_content) == b""
    response = client.delete(f"/dicomweb/studies/{ct.study_instance_uid}")
    assert response.status_code in (403, 405)  # session DELETE without CSRF token, or not allowed
    csrf_client = Client(enforce_csrf_checks=False)
    csrf_client.force_login(doctor, backend="institutions.backends.EmailOrUsernameBackend")
    assert csrf_client.put(f"/dicomweb/studies/{ct.study_instance_uid}/metadata").status_code == 405


@pytest.mark.django_db(transaction=True)
async def test_retrieve_streams_asynchronously_under_asgi(clinic: Institution, doctor: User) -> None:
    """Under ASGI (uvicorn) the body is an async iterator, so Django does not collect it into a list first."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    study = await sync_to_async(make_study)(clinic, "emri_small.dcm")
    base = await sync_to_async(_base)(study)
    client = AsyncClient()
    await client.aforce_login(doctor, backend="institutions.backends.EmailOrUsernameBackend")
    response = await client.get(f"/dicomweb/studies/{study.study_instance_uid}")
    assert response.status_code == 200
    assert response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert testdata_path("emri_small.dcm").read_bytes() in body
    frames = await client.get(f"{base}/frames/1,2")
    assert frames.is_async
    assert len(b"".join([chunk async for chunk in frames.streaming_content])) > 2 * 64 * 64 * 2
    # The thread sync_to_async ran make_study in holds a connection; let the test database go.
    from django.db import connections

    await sync_to_async(connections.close_all)()
