"""Interoperability: the dicomweb-client package drives every endpoint against a live server.

A real HTTP server (pytest-django's ``live_server``), a real client
(``dicomweb_client.DICOMwebClient`` on a ``requests.Session``) and a
personal access token: what an external viewer or script would do.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from PIL import Image

from imaging.dicomweb.stow import FAILURE_REASONS
from imaging.models import Instance
from imaging.testing import make_study, testdata_path
from institutions.models import Institution, Role, User
from institutions.testing import make_institution, make_member
from institutions.tokens import token_create


def _pixel_files() -> list[Path]:
    """Every pydicom / pydicom-data file on this disk that has pixel data."""
    import pydicom.data

    roots = [Path(pydicom.data.__file__).parent / "test_files"]
    try:
        import data_store

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(p for root in roots for p in root.rglob("*.dcm")):
            try:
                ds = pydicom.dcmread(path, defer_size=64, force=True)
            except Exception:  # noqa: BLE001  (some test files are deliberately broken)
                continue
            if any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
                found.append(path)
    return found


@pytest.fixture
def token(doctor: User) -> str:
    return token_create(user=doctor, name="dicomweb-client")[1]


@pytest.fixture
def client(live_server: object, token: str) -> Iterator[DICOMwebClient]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    # One request per stored file: no chunked uploads (the test server is plain WSGI).
    web = DICOMwebClient(f"{live_server.url}/dicomweb", session=session, chunk_size=2**31)  # type: ignore[attr-defined]
    web.set_http_retry_params(retry=False)
    yield web
    session.close()


@pytest.fixture
def no_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    """Preview rendering is not what these tests are about; skip it for speed."""
    monkeypatch.setattr("imaging.tasks.schedule_previews", lambda **kwargs: None)


def test_search_finds_the_clinics_study_with_counts_and_names(client: DICOMwebClient, clinic: Institution) -> None:
    study = make_study(clinic, "CT_small.dcm")
    found = client.search_for_studies(search_filters={"PatientName": "compressed*"})
    assert [s["0020000D"]["Value"][0] for s in found] == [study.study_instance_uid]
    assert found[0]["00201208"]["Value"] == [1]
    assert found[0]["00201206"]["Value"] == [1]
    assert found[0]["00100010"]["Value"][0]["Alphabetic"] == "CompressedSamples^CT1"
    series = client.search_for_series(study.study_instance_uid)
    assert series[0]["00080060"]["Value"] == ["CT"]
    instances = client.search_for_instances(study.study_instance_uid, fields=["all"])
    assert instances[0]["00280010"]["Value"] == [128]
    assert client.search_for_studies(search_filters={"PatientName": "nobody*"}) == []


def test_metadata_frames_and_rendered_come_back_through_the_client(client: DICOMwebClient, clinic: Institution) -> None:
    study = make_study(clinic, "CT_small.dcm")
    instance = Instance.objects.select_related("series").get(study=study)
    uids = (study.study_instance_uid, instance.series.series_instance_uid, instance.sop_instance_uid)

    metadata = client.retrieve_study_metadata(uids[0])
    assert metadata[0]["00080018"]["Value"] == [uids[2]]
    pixel_uri = metadata[0]["7FE00010"]["BulkDataURI"]
    # Absolute, from the request's Host header (which dicomweb-client sends without the port).
    assert pixel_uri.startswith("http://localhost/dicomweb/studies/")
    pixel_uri = client.base_url.removesuffix("/dicomweb") + pixel_uri.removeprefix("http://localhost")
    assert client.retrieve_instance_metadata(*uids)["00100020"]["Value"] == ["1CT1"]

    (frame,) = client.retrieve_instance_frames(*uids, frame_numbers=[1])
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    assert frame == ds.PixelData  # uncompressed: the stored bytes, exactly

    (bulk,) = client.retrieve_bulkdata(pixel_uri)
    assert bulk == ds.PixelData

    jpeg = client.retrieve_instance_rendered(*uids, media_types=("image/jpeg",), params={"window": "40,400"})
    assert Image.open(io.BytesIO(jpeg)).size == (128, 128)
    png = client.retrieve_instance_frames_rendered(*uids, frame_numbers=[1], media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).format == "PNG"

    (retrieved,) = client.retrieve_study(uids[0])
    assert retrieved.SOPInstanceUID == uids[2]
    assert client.retrieve_series(uids[0], uids[1])[0].SOPInstanceUID == uids[2]


def _client_for(base_url: str, user: User) -> DICOMwebClient:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token_create(user=user, name='round trip')[1]}"
    web = DICOMwebClient(base_url, session=session, chunk_size=2**31)
    web.set_http_retry_params(retry=False)
    return web


def _store(web: DICOMwebClient, ds: pydicom.Dataset) -> tuple[str, int]:
    """Store one dataset; ("stored", 0) with its RetrieveURL… or ("failed", reason)."""
    try:
        response = web.store_instances([ds])
    except requests.HTTPError as exc:
        assert exc.response.status_code == 409, exc.response.text
        reason = exc.response.json()["00081198"]["Value"][0]["00081197"]["Value"][0]
        assert reason in FAILURE_REASONS
        return "failed", reason
    (reference,) = response.ReferencedSOPSequence
    return reference.RetrieveURL, 0


def test_every_pixel_test_file_round_trips_byte_for_byte_through_stow_and_wado(
    client: DICOMwebClient, clinic: Institution, doctor: User, no_previews: None
) -> None:
    # Many test files share SOP Instance UIDs with different contents: within one
    # archive the second is a conflict (0x0111), so it goes to the next clinic
    # (another tenant, with its own user and token) that does not hold it yet.
    tenants = [(clinic, client)]
    stored, refused = 0, 0
    for path in _pixel_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
            buffer = io.BytesIO()
            try:
                pydicom.dcmwrite(buffer, ds)  # exactly what store_instances sends
            except Exception:  # noqa: BLE001  (pydicom refuses to write some of its own broken samples)
                continue  # pydicom cannot write it: the client cannot send it either
        sent = hashlib.sha256(buffer.getvalue()).hexdigest()
        for position in itertools.count():
            if position == len(tenants):
                other = make_institution(health_center=clinic.health_center)
                tenants.append((other, _client_for(client.base_url, make_member(other, Role.PHYSICIAN))))
            institution, web = tenants[position]
            url, reason = _store(web, ds)
            if reason != 0x0111:
                break
        if reason:
            refused += 1  # the ingest refuses the file itself (unreadable, invalid UID)
            continue
        # RetrieveURL is built from the Host header, which dicomweb-client sends without the port.
        url = web.base_url + url.split("/dicomweb", 1)[1]
        assert Instance.objects.get(institution=institution, sop_instance_uid=ds.SOPInstanceUID).sha256 == sent
        raw = web._http_get(url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
        (part,) = web._decode_multipart_message(raw, stream=False)
        assert hashlib.sha256(part).hexdigest() == sent, path.name
        stored += 1
    for _institution, web in tenants[1:]:
        web._session.close()  # keep-alive connections would outlive the live server's database
    assert stored >= 110, (stored, refused)
    assert refused <= 10, refused


def test_store_into_a_named_study_refuses_parts_of_another_study(client: DICOMwebClient) -> None:
    ds = pydicom.dcmread(testdata_path("CT_small.dcm"))
    with pytest.raises(requests.HTTPError) as raised:
        client.store_instances([ds], study_instance_uid="1.2.3.4.5")
    assert raised.value.response.status_code == 409
    failed = raised.value.response.json()["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [0xA900]
    assert failed["00081155"]["Value"] == [ds.SOPInstanceUID]
    stored = client.store_instances([ds], study_instance_uid=ds.StudyInstanceUID)
    assert stored.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
