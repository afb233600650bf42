"""WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data.

Every request first asks ``imaging.access.access_study`` (404 for unknown
and forbidden alike), then looks up instances of that study only, and is
audited as a ``study.retrieve`` (one row per person, study and kind of read
every few minutes: ``common.audit_retrieve``). Stored files are streamed from storage in
1 MB chunks, never a whole study in memory; metadata is the stored DICOM
JSON, read as text from the database and joined without decoding.

Instances are immutable (their storage key carries the content hash), so
their ETag is their SHA-256, and a study's is derived from its instances'.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pydicom
from django.db.models import TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from pydicom.tag import Tag
from pydicom.uid import UID

from imaging import storage
from imaging.access import StudyKey, find_study
from imaging.dicomweb import frames as frame_io
from imaging.dicomweb import multipart
from imaging.dicomweb.common import (
    STREAM_CHUNK,
    DicomwebError,
    audit_retrieve,
    bad_request,
    endpoint,
    etag_of,
    json_response,
    not_modified,
    set_validators,
)
from imaging.dicomweb.instances import FIELDS as STORED_FIELDS
from imaging.dicomweb.instances import StoredInstance, stored_instance
from imaging.dicomweb.negotiation import (
    BIG_ENDIAN,
    COMPRESSED_FRAME_TYPES,
    DICOM,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    OCTET_STREAM,
    MediaRange,
    NotAcceptable,
    request_accept,
    wants_json,
)
from imaging.dicomweb.urls_util import host_root
from imaging.models import Instance

# What instance-level reads load: the immutable columns StoredInstance keeps, and the SOP class.
INSTANCE_FIELDS = (*STORED_FIELDS, "sop_class_uid")
_BULK_URI = re.compile(r'("BulkDataURI"\s*:\s*")/')
# The transfer syntax PS3.18 Table 8.7.3-2 makes the default of each frame media type.
DEFAULT_SYNTAX = {
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
}


# --- looking up -------------------------------------------------------------------------------


def instances_of(
    request: HttpRequest, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> tuple[StudyKey, list[Instance]]:
    """The visible study and its instances (of one series / one instance); Http404 when none.

    Only the columns a retrieve needs are read (not the metadata).
    """
    study = find_study(request.user, study_uid)
    instances = Instance.objects.filter(study_id=study.pk).select_related("series").only(*INSTANCE_FIELDS)
    if series_uid is not None:
        instances = instances.filter(series__series_instance_uid=series_uid)
    if sop_uid is not None:
        instances = instances.filter(sop_instance_uid=sop_uid)
    found = list(instances.order_by("series__series_number", "series_id", "instance_number", "id"))
    if not found:
        raise Http404("No such series or instance")
    return study, found


def one_instance(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str
) -> tuple[StudyKey, StoredInstance]:
    """The visible study and one of its instances, for the per-frame requests; Http404 when not found.

    The access check runs every time; the instance's columns come from the
    process's cache after the first request (``imaging.dicomweb.instances``).
    """
    study = find_study(request.user, study_uid)
    return study, stored_instance(study, series_uid, sop_uid)


def _validators(instances: list[Instance], *extra: object) -> tuple[str, datetime]:
    if len(instances) == 1 and not extra:
        etag = f'"{instances[0].sha256}"'
    else:
        etag = etag_of(*extra, *(instance.sha256 for instance in instances))
    return etag, max(instance.created_at for instance in instances)


# --- retrieve instances --------------------------------------------------------------------------


@dataclass(frozen=True)
class DicomChoice:
    multipart: bool
    transcode: bool  # to Explicit VR Little Endian


def _choose_dicom(ranges: list[MediaRange], syntaxes: set[str], single: bool) -> DicomChoice:
    """How to send application/dicom: stored bytes, or transcoded to Explicit VR Little Endian.

    Without a transfer-syntax parameter (or with ``*``) the files go out as
    stored, so a client gets back the very bytes it sent.
    """
    for media_range in ranges:
        if media_range.media_type == "*/*":
            return DicomChoice(multipart=True, transcode=False)
        if not media_range.matches(DICOM):
            continue
        if not media_range.is_multipart and not single:
            continue
        wanted = media_range.transfer_syntax
        if wanted in (None, "*") or syntaxes == {wanted}:
            return DicomChoice(media_range.is_multipart, transcode=False)
        if wanted == EXPLICIT_VR_LITTLE_ENDIAN and BIG_ENDIAN not in syntaxes:
            return DicomChoice(media_range.is_multipart, transcode=True)
    raise NotAcceptable(['multipart/related; type="application/dicom"'])


def _file_chunks(key: str) -> Iterator[bytes]:
    with storage.open_file(key) as handle:
        while chunk := handle.read(STREAM_CHUNK):
            yield chunk


def _explicit_little_endian(key: str) -> bytes:
    """One instance transcoded to Explicit VR Little Endian (decompressed when encapsulated)."""
    with storage.local_path(key) as path:
        ds = pydicom.dcmread(str(path), force=True)
    try:
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress(generate_instance_uid=False)  # lossless decoding: the same instance
        else:
            ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=False, little_endian=True, enforce_file_format=True)
    except Exception as exc:
        raise DicomwebError(406, _("The instance cannot be transcoded: %(reason)s") % {"reason": exc}) from exc
    return buffer.getvalue()


def _dicom_parts(instances: list[Instance], boundary: str, transcode: bool) -> Iterator[bytes]:
    for instance in instances:
        syntax = EXPLICIT_VR_LITTLE_ENDIAN if transcode else instance.transfer_syntax_uid
        yield multipart.part_header(boundary, f"{DICOM}; transfer-syntax={syntax}")
        if transcode and instance.transfer_syntax_uid != EXPLICIT_VR_LITTLE_ENDIAN:
            yield _explicit_little_endian(instance.storage_key)
        else:
            yield from _file_chunks(instance.storage_key)
        yield multipart.part_end()
    yield multipart.closing(boundary)


def _retrieve(request: HttpRequest, study: StudyKey, instances: list[Instance], resource: str) -> HttpResponseBase:
    choice = _choose_dicom(
        request_accept(request), {i.transfer_syntax_uid for i in instances}, single=resource == "instance"
    )
    # The stored files as they are keep the SHA-256 as ETag; other representations get their own.
    etag, last_modified = _validators(instances, *(() if choice == DicomChoice(True, False) else (choice,)))
    cached = not_modified(request, etag, last_modified)
    if cached is not None:
        return cached
    audit_retrieve(
        request,
        study,
        resource,
        series=instances[0].series.series_instance_uid if resource != "study" else "",
        instance=instances[0].sop_instance_uid if resource == "instance" else "",
    )
    response: HttpResponseBase
    if not choice.multipart:
        instance = instances[0]
        if choice.transcode:
            response = HttpResponse(_explicit_little_endian(instance.storage_key), content_type=DICOM)
        else:
            response = StreamingHttpResponse(_file_chunks(instance.storage_key), content_type=DICOM)
            response["Content-Length"] = str(instance.size)
    else:
        boundary = multipart.new_boundary()
        response = StreamingHttpResponse(
            _dicom_parts(instances, boundary, choice.transcode),
            content_type=multipart.content_type(DICOM, boundary),
        )
    set_validators(response, etag, last_modified)
    return response


@endpoint("GET")
def retrieve_study(request: HttpRequest, study_uid: str) -> HttpResponseBase:
    study, instances = instances_of(request, study_uid)
    return _retrieve(request, study, instances, "study")


@endpoint("GET")
def retrieve_series(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponseBase:
    study, instances = instances_of(request, study_uid, series_uid)
    return _retrieve(request, study, instances, "series")


@endpoint("GET")
def retrieve_instance(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponseBase:
    study, instances = instances_of(request, study_uid, series_uid, sop_uid)
    return _retrieve(request, study, instances, "instance")


# --- metadata ----------------------------------------------------------------------------------


def _metadata(
    request: HttpRequest, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> HttpResponse:
    content_type = wants_json(request_accept(request))
    study = find_study(request.user, study_uid)
    rows = Instance.objects.filter(study_id=study.pk)
    if series_uid is not None:
        rows = rows.filter(series__series_instance_uid=series_uid)
    if sop_uid is not None:
        rows = rows.filter(sop_instance_uid=sop_uid)
    found = list(
        rows.order_by("series__series_number", "series_id", "instance_number", "id").values_list(
            "sha256", "created_at", Cast("metadata", output_field=TextField())
        )
    )
    if not found:
        raise Http404("No such series or instance")
    origin = host_root(request)
    etag = etag_of("metadata", origin, *(sha for sha, _created, _text in found))
    last_modified = max(created for _sha, created, _text in found)
    cached = not_modified(request, etag, last_modified)
    if cached is not None:
        return cached
    audit_retrieve(
        request,
        study,
        "metadata",
        series=series_uid or "",
        instance=sop_uid or "",
    )
    # The stored JSON is joined as text: BulkDataURIs are root-relative and get this host in front.
    body = "[" + ",".join(text for _sha, _created, text in found) + "]"
    body = _BULK_URI.sub(lambda match: match.group(1) + origin + "/", body)
    response = json_response(request, body.encode("utf-8"), content_type)
    set_validators(response, etag, last_modified)
    return response


@endpoint("GET")
def study_metadata(request: HttpRequest, study_uid: str) -> HttpResponse:
    return _metadata(request, study_uid)


@endpoint("GET")
def series_metadata(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    return _metadata(request, study_uid, series_uid)


@endpoint("GET")
def instance_metadata(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
    return _metadata(request, study_uid, series_uid, sop_uid)


# --- frames ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameChoice:
    multipart: bool
    media_type: str
    transfer_syntax: str
    decode: bool


def parse_frame_list(text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise bad_request(_("Frame numbers must be whole numbers separated by commas, such as 1,2,3.")) from None
    if not numbers or min(numbers) < 1:
        raise bad_request(_("Frame numbers start at 1."))
    return numbers


def choose_frames(ranges: list[MediaRange], stored: str, single: bool) -> FrameChoice:
    """The representation of frames: as stored, or decoded to little-endian octets (PS3.18 8.7.3.3.2)."""
    native = stored in (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, BIG_ENDIAN)
    compressed_type = COMPRESSED_FRAME_TYPES.get(stored)
    for media_range in ranges:
        if not media_range.is_multipart and not (single or media_range.media_type == "*/*"):
            continue
        multipart_answer = media_range.is_multipart or media_range.media_type == "*/*"
        if media_range.part_type in ("*/*", "*"):
            if native:
                return FrameChoice(multipart_answer, OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN, False)
            return FrameChoice(multipart_answer, OCTET_STREAM, stored, False)
        if media_range.matches(OCTET_STREAM):
            wanted = media_range.transfer_syntax
            if native and wanted in (None, "*", EXPLICIT_VR_LITTLE_ENDIAN):
                return FrameChoice(multipart_answer, OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN, False)
            if not native and wanted in ("*", stored):
                return FrameChoice(multipart_answer, OCTET_STREAM, stored, False)
            if not native and wanted in (None, EXPLICIT_VR_LITTLE_ENDIAN):
                return FrameChoice(multipart_answer, OCTET_STREAM, EXPLICIT_VR_LITTLE_ENDIAN, True)
            continue
        if compressed_type and media_range.matches(compressed_type):
            if media_range.admits_syntax(stored, DEFAULT_SYNTAX.get(compressed_type)):
                return FrameChoice(multipart_answer, compressed_type, stored, False)
    offered = [f'multipart/related; type="{OCTET_STREAM}"']
    if compressed_type:
        offered.append(f'multipart/related; type="{compressed_type}"; transfer-syntax={stored}')
    raise NotAcceptable(offered)


def frame_bytes(path_key: str, instance: StoredInstance, index: int, decode: bool) -> bytes:
    with storage.local_path(path_key) as path:
        try:
            if decode:
                return frame_io.decoded_frame(path, index)
            pixel = frame_io.layout(path, path_key, instance.transfer_syntax_uid)
            return frame_io.stored_frame(path, pixel, index)
        except frame_io.FrameError as exc:
            raise DicomwebError(404 if "does not exist" in exc.reason else 406, exc.reason) from exc


def frames_response(
    request: HttpRequest, study: StudyKey, instance: StoredInstance, numbers: list[int], resource: str = "frames"
) -> HttpResponseBase:
    if instance.number_of_frames == 0:
        raise DicomwebError(404, _("This instance has no pixel data, so it has no frames."))
    missing = [n for n in numbers if n > instance.number_of_frames]
    if missing:
        raise DicomwebError(
            404,
            _("Frame %(frame)d does not exist: the instance has %(count)d frame(s).")
            % {"frame": missing[0], "count": instance.number_of_frames},
        )
    choice = choose_frames(request_accept(request), instance.transfer_syntax_uid, single=len(numbers) == 1)
    etag = etag_of(instance.sha256, numbers, choice)
    cached = not_modified(request, etag, instance.created_at)
    if cached is not None:
        return cached
    audit_retrieve(
        request,
        study,
        resource,
        series=instance.series_instance_uid,
        instance=instance.sop_instance_uid,
        frames=",".join(str(n) for n in numbers[:50]),
    )
    part_type = choice.media_type
    if choice.transfer_syntax != EXPLICIT_VR_LITTLE_ENDIAN or choice.media_type != OCTET_STREAM:
        part_type = f"{choice.media_type}; transfer-syntax={choice.transfer_syntax}"
    key = instance.storage_key
    response: HttpResponseBase
    if not choice.multipart:
        response = HttpResponse(frame_bytes(key, instance, numbers[0] - 1, choice.decode), content_type=part_type)
    elif len(numbers) == 1:
        # One frame: build it whole, it is small and this is the viewer's hot path.
        boundary = multipart.new_boundary()
        body = b"".join(
            (
                multipart.part_header(boundary, part_type),
                frame_bytes(key, instance, numbers[0] - 1, choice.decode),
                multipart.part_end(),
                multipart.closing(boundary),
            )
        )
        response = HttpResponse(body, content_type=multipart.content_type(choice.media_type, boundary))
    else:
        boundary = multipart.new_boundary()

        def parts() -> Iterator[bytes]:
            for number in numbers:
                yield multipart.part_header(boundary, part_type)
                yield frame_bytes(key, instance, number - 1, choice.decode)
                yield multipart.part_end()
            yield multipart.closing(boundary)

        response = StreamingHttpResponse(parts(), content_type=multipart.content_type(choice.media_type, boundary))
    set_validators(response, etag, instance.created_at)
    return response


@endpoint("GET")
def retrieve_frames(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frames: str
) -> HttpResponseBase:
    numbers = parse_frame_list(frames)
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    return frames_response(request, study, instance, numbers)


# --- bulk data -----------------------------------------------------------------------------------


def _walk(ds: pydicom.Dataset, parts: list[str]) -> bytes:
    """The value at a bulk data path: ``TAG`` or ``SEQTAG/index/…/TAG``."""
    try:
        tag = Tag(int(parts[0], 16))
    except ValueError:
        raise Http404("Malformed bulk data path") from None
    if tag not in ds:
        raise Http404("No such attribute")
    element = ds[tag]
    if len(parts) == 1:
        value = element.value
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        raise Http404("Not a bulk data attribute")
    if element.VR != "SQ" or len(parts) < 3 or not parts[1].isdigit():
        raise Http404("Malformed bulk data path")
    index = int(parts[1])
    if index >= len(element.value):
        raise Http404("No such sequence item")
    return _walk(element.value[index], parts[2:])


@endpoint("GET")
def retrieve_bulkdata(
    request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, path: str
) -> HttpResponseBase:
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts or len(parts) % 2 == 0:
        raise Http404("Malformed bulk data path")
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    if parts == ["7FE00010"] or parts == ["7fe00010"]:
        # Pixel data by reference: its frames (PS3.18 8.7.3.3.2).
        return frames_response(
            request, study, instance, list(range(1, instance.number_of_frames + 1)) or [1], "bulkdata"
        )
    ranges = request_accept(request)
    single = all(not r.is_multipart for r in ranges) and any(r.matches(OCTET_STREAM) for r in ranges)
    if not single and not any(r.media_type == "*/*" or (r.is_multipart and r.matches(OCTET_STREAM)) for r in ranges):
        raise NotAcceptable([f'multipart/related; type="{OCTET_STREAM}"'])
    etag = etag_of(instance.sha256, path)
    cached = not_modified(request, etag, instance.created_at)
    if cached is not None:
        return cached
    with storage.local_path(instance.storage_key) as local:
        ds = pydicom.dcmread(str(local), force=True, defer_size=1024)
        value = _walk(ds, [part.upper() for part in parts])
    audit_retrieve(
        request,
        study,
        "bulkdata",
        series=series_uid,
        instance=sop_uid,
        path=path[:100],
    )
    if single:
        response = HttpResponse(value, content_type=OCTET_STREAM)
    else:
        boundary = multipart.new_boundary()
        body = (
            multipart.part_header(boundary, OCTET_STREAM) + value + multipart.part_end() + multipart.closing(boundary)
        )
        response = HttpResponse(body, content_type=multipart.content_type(OCTET_STREAM, boundary))
    set_validators(response, etag, instance.created_at)
    return response
