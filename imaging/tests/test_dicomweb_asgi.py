"""imaging.dicomweb.asgi: DICOMweb reads served by the production ASGI handler in one thread hop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.test import override_settings

from clinicnet.audit.models import AuditEvent
from imaging import storage
from imaging.dicomweb.asgi import ClinicNetASGIHandler
from imaging.ingest import spool_path
from imaging.models import Instance, Study
from imaging.testing import make_study, testdata_path
from institutions.models import Institution, User
from institutions.tokens import token_create

# The handler serves from threads of its own: the rows must be committed for them to see.
pytestmark = pytest.mark.django_db(transaction=True)


def _scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "testserver", **headers}.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _call(
    method: str, path: str, headers: dict[str, str], body: bytes = b"", piece: int = 0
) -> list[dict[str, Any]]:
    """Every message the handler sends for one request (whose body arrives in pieces of *piece* bytes)."""
    app = ApplicationCommunicator(ClinicNetASGIHandler(), _scope(method, path, headers))
    pieces = [body[start : start + piece] for start in range(0, len(body), piece)] if piece else [body]
    for index, content in enumerate(pieces):
        await app.send_input({"type": "http.request", "body": content, "more_body": index < len(pieces) - 1})
    messages = []
    while True:
        message = await app.receive_output(timeout=10)
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            break
    await app.wait(timeout=10)
    return messages


def _status_headers_body(messages: list[dict[str, Any]]) -> tuple[int, dict[bytes, bytes], bytes, int]:
    start = messages[0]
    assert start["type"] == "http.response.start"
    bodies = [m for m in messages[1:] if m["type"] == "http.response.body"]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in bodies), len(bodies)


@pytest.fixture
def ct(clinic: Institution) -> Study:
    return make_study(clinic, "CT_small.dcm")


@pytest.fixture
def bearer(doctor: User) -> dict[str, str]:
    return {"authorization": f"Bearer {token_create(user=doctor, name='asgi test')[1]}"}


def _stored_bytes(key: str) -> bytes:
    with storage.open_file(key) as handle:
        return handle.read()


def _instance(study: Study) -> Instance:
    return Instance.objects.select_related("series").get(study=study)


def _path(study: Study, instance: Instance) -> str:
    return (
        f"/dicomweb/studies/{study.study_instance_uid}/series/{instance.series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )


async def test_a_frame_is_answered_in_one_body_message(ct: Study, bearer: dict[str, str]) -> None:
    instance = await database_sync_to_async(_instance)(ct)
    accept = {"accept": 'multipart/related; type="application/octet-stream"'}
    status, headers, body, pieces = _status_headers_body(
        await _call("GET", f"{_path(ct, instance)}/frames/1", {**bearer, **accept})
    )
    assert status == 200
    assert headers[b"Content-Type"].startswith(b"multipart/related")
    assert pieces == 1
    assert len(body) > 128 * 128 * 2  # CT_small: one 128 × 128 16-bit frame, in its part
    assert await database_sync_to_async(AuditEvent.objects.filter(action="study.retrieve").count)() == 1


async def test_a_whole_study_streams_byte_for_byte(ct: Study, bearer: dict[str, str]) -> None:
    instance = await database_sync_to_async(_instance)(ct)
    status, headers, body, _pieces = _status_headers_body(
        await _call("GET", f"/dicomweb/studies/{ct.study_instance_uid}", {**bearer, "accept": "*/*"})
    )
    assert status == 200
    assert b'type="application/dicom"' in headers[b"Content-Type"]
    stored = await database_sync_to_async(_stored_bytes)(instance.storage_key)
    assert stored in body  # the part holds the stored file unchanged


async def test_other_tenants_and_unknown_uids_get_404_and_head_gets_no_body(
    ct: Study, outsider: User, bearer: dict[str, str]
) -> None:
    theirs = {"authorization": f"Bearer {(await database_sync_to_async(token_create)(user=outsider, name='x'))[1]}"}
    status, headers, body, _ = _status_headers_body(
        await _call("GET", f"/dicomweb/studies/{ct.study_instance_uid}/metadata", theirs)
    )
    assert status == 404
    assert b"Content-Type" in headers
    status, _headers, body, _ = _status_headers_body(await _call("GET", "/dicomweb/studies/1.2.3/metadata", bearer))
    assert status == 404
    status, headers, body, _ = _status_headers_body(
        await _call("HEAD", f"/dicomweb/studies/{ct.study_instance_uid}/metadata", bearer)
    )
    assert status == 200
    assert body == b""


async def test_writes_still_go_through_djangos_own_handling(bearer: dict[str, str]) -> None:
    status, _headers, body, _ = _status_headers_body(
        await _call("POST", "/dicomweb/studies", {**bearer, "content-type": "text/plain"}, b"not multipart")
    )
    assert status == 415
    assert body


# --- STOW-RS: the body split into its parts as it arrives -------------------------------------

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=asgi-test'
FILES = [testdata_path("CT_small.dcm").read_bytes(), testdata_path("MR_small.dcm").read_bytes()]


def _stow_body(files: list[bytes]) -> bytes:
    parts = b"".join(b"--asgi-test\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n" for data in files)
    return parts + b"--asgi-test--\r\n"


@pytest.fixture
def spool(tmp_path: Path) -> Any:
    with override_settings(DATA_DIR=tmp_path):
        yield spool_path()


def _spooled(spool: Path) -> list[Path]:
    return list(spool.iterdir()) if spool.exists() else []


@pytest.mark.parametrize("piece", [0, 9, 65536])
async def test_stow_parts_are_split_as_the_body_arrives(piece: int, bearer: dict[str, str], spool: Path) -> None:
    status, _headers, body, _ = _status_headers_body(
        await _call("POST", "/dicomweb/studies", {**bearer, "content-type": STOW_TYPE}, _stow_body(FILES), piece)
    )
    assert status == 200, body
    assert len(json.loads(body)["00081199"]["Value"]) == 2
    stored = await database_sync_to_async(lambda: [_stored_bytes(i.storage_key) for i in Instance.objects.all()])()
    assert sorted(stored) == sorted(FILES)  # byte for byte
    assert _spooled(spool) == []


async def test_a_stow_body_that_breaks_stores_the_parts_before_and_says_why(
    bearer: dict[str, str], spool: Path
) -> None:
    broken = _stow_body(FILES[:1]).removesuffix(b"--asgi-test--\r\n") + b"--asgi-test\r\nno colon\r\n\r\n"
    headers = {**bearer, "content-type": STOW_TYPE}
    status, response_headers, body, _ = _status_headers_body(await _call("POST", "/dicomweb/studies", headers, broken))
    assert status == 202
    assert b"malformed part header line" in response_headers[b"Warning"]
    assert await database_sync_to_async(Instance.objects.count)() == 1
    status, _headers, body, _ = _status_headers_body(
        await _call("POST", "/dicomweb/studies", headers, b"--asgi-test\r\nno colon\r\n\r\n")
    )
    assert status == 400
    assert b"malformed part header line" in body
    assert _spooled(spool) == []


async def test_an_unauthenticated_stow_stores_nothing_and_leaves_nothing(spool: Path) -> None:
    status, _headers, _body, _ = _status_headers_body(
        await _call("POST", "/dicomweb/studies", {"content-type": STOW_TYPE}, _stow_body(FILES), 1000)
    )
    assert status == 401
    assert await database_sync_to_async(Instance.objects.count)() == 0
    assert _spooled(spool) == []


async def test_a_stow_client_that_goes_away_mid_body_leaves_nothing(bearer: dict[str, str], spool: Path) -> None:
    app = ApplicationCommunicator(
        ClinicNetASGIHandler(), _scope("POST", "/dicomweb/studies", {**bearer, "content-type": STOW_TYPE})
    )
    body = _stow_body(FILES)
    await app.send_input({"type": "http.request", "body": body[: len(FILES[0]) + 200], "more_body": True})
    await app.send_input({"type": "http.disconnect"})
    await app.wait(timeout=10)
    assert await app.receive_nothing()
    assert await database_sync_to_async(Instance.objects.count)() == 0
    assert _spooled(spool) == []
