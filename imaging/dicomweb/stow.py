"""STOW-RS (PS3.18 10.5): store instances sent as multipart/related; type="application/dicom".

Each part of the body is spooled to a temporary file in
``imaging.ingest.spool_dir()`` (the data disk), hashed as it is written, and
handed to the one ingest path, :class:`imaging.ingest.IngestSession` with
``EntryPoint.STOW``. Under the ASGI server the body is split into those files
while it arrives (``imaging/dicomweb/asgi.py``), so each byte is written once;
otherwise (the test client, WSGI) the view reads and splits it now, with the
same :class:`~imaging.dicomweb.multipart.MultipartSplitter`. Either way a 1 GB
request needs kilobytes of memory, not a gigabyte. The session indexes the
parts in batches of ``UPLOAD_BATCH`` (each batch durable
on disk before its one transaction); the response is built after the
session has closed, from the final per-part results.

The instances go to the user's upload institution
(``imaging.access.upload_institution``); a user with several names one with
``?institution=<code>``.

Response status (PS3.18 10.5.3): 200 all stored, 202 some failed, 409 none
stored, 415 not ``multipart/related; type="application/dicom"``, 400 a body
that is not the multipart message it says it is. The body is DICOM JSON
with ReferencedSOPSequence and FailedSOPSequence; the Failure Reason codes
are listed in :data:`FAILURE_REASONS` and in docs/dicom-conformance.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from imaging.access import upload_institution
from imaging.dicomweb import json_model
from imaging.dicomweb.common import DicomwebError, endpoint, json_response
from imaging.dicomweb.multipart import MalformedMultipart, MultipartReader, Part, SplitBody
from imaging.dicomweb.negotiation import DICOM, DICOM_JSON, MULTIPART, content_type_params, request_accept, wants_json
from imaging.dicomweb.urls_util import service_root
from imaging.ingest import UPLOAD_BATCH, EntryPoint, IngestResult, IngestSession, Outcome, spool_dir
from institutions.models import User

logger = logging.getLogger(__name__)

# Failure Reason (0008,1197) values (PS3.18 Table 10.5.3-3 and PS3.4 Annex B).
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

FAILURE_REASONS = {
    PROCESSING_FAILURE: "the file could not be stored or indexed (try again)",
    DUPLICATE_SOP_INSTANCE: "an instance with this SOP Instance UID is stored with different contents",
    SOP_CLASS_NOT_SUPPORTED: "a DICOMDIR (Media Storage Directory): not an instance to archive",
    OUT_OF_RESOURCES: "the part is larger than the per-file limit (DICOM_MAX_FILE_MB)",
    DOES_NOT_MATCH: "the Study Instance UID differs from the study in the request URL, "
    "or the study is already filed under another patient",
    CANNOT_UNDERSTAND: "not a readable DICOM Part 10 file, a required UID is missing or invalid, "
    "or the part is not application/dicom",
}


def _study_uid_of(path: Path) -> str | None:
    """The Study Instance UID of a part, read cheaply; None when unreadable (ingest will say why)."""
    try:
        ds = pydicom.dcmread(str(path), specific_tags=["StudyInstanceUID"], stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001  (ingest reports unreadable files with the reason)
        return None
    value = ds.get("StudyInstanceUID")
    return str(value).strip() if value else None


def _failure_reason(result: IngestResult) -> int:
    if result.outcome == Outcome.SKIPPED:
        return SOP_CLASS_NOT_SUPPORTED
    if result.outcome == Outcome.CONFLICT:
        return DUPLICATE_SOP_INSTANCE if result.instance_id else DOES_NOT_MATCH
    if result.size > settings.DICOM_MAX_FILE_BYTES:
        return OUT_OF_RESOURCES
    if result.sop_instance_uid:
        return PROCESSING_FAILURE
    return CANNOT_UNDERSTAND


def _failed_item(sop_class: str, sop_instance: str, reason: int) -> dict[str, Any]:
    return {
        "00081150": json_model.element("00081150", sop_class, "UI"),
        "00081155": json_model.element("00081155", sop_instance, "UI"),
        "00081197": json_model.element("00081197", reason, "US"),
    }


class _Outcomes:
    def __init__(self, root: str) -> None:
        self.root = root
        self.stored: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self.studies: set[str] = set()

    def add(self, result: IngestResult) -> None:
        if result.ok:
            url = (
                f"{self.root}/studies/{result.study_instance_uid}/series/{result.series_instance_uid}"
                f"/instances/{result.sop_instance_uid}"
            )
            self.stored.append(
                {
                    "00081150": json_model.element("00081150", result.sop_class_uid, "UI"),
                    "00081155": json_model.element("00081155", result.sop_instance_uid, "UI"),
                    "00081190": json_model.element("00081190", url, "UR"),
                }
            )
            self.studies.add(result.study_instance_uid)
        else:
            self.failed.append(_failed_item(result.sop_class_uid, result.sop_instance_uid, _failure_reason(result)))

    def fail(self, reason: int, part: Part | None = None, sop_class: str = "", sop_instance: str = "") -> None:
        self.failed.append(_failed_item(sop_class, sop_instance, reason))


# A part's fate: an ingest result (final once the session has closed), or a
# failure found before ingest (reason, SOP Class UID, SOP Instance UID).
_PartOutcome = IngestResult | tuple[int, str, str]


def _part_uids(path: Path) -> tuple[str, str]:
    try:
        ds = pydicom.dcmread(
            str(path), specific_tags=["SOPClassUID", "SOPInstanceUID"], stop_before_pixels=True, force=True
        )
    except Exception:  # noqa: BLE001  (only for the failure report)
        return "", ""
    return str(ds.get("SOPClassUID", "") or ""), str(ds.get("SOPInstanceUID", "") or "")


@endpoint("POST")
def store_instances(request: HttpRequest, study_uid: str | None = None) -> HttpResponse:
    response_type = wants_json(request_accept(request))
    media_type, params = content_type_params(request.META.get("CONTENT_TYPE", ""))
    part_type = params.get("type", DICOM).lower()
    if media_type != MULTIPART or part_type != DICOM:
        raise DicomwebError(
            415,
            _('STOW-RS takes multipart/related; type="application/dicom" with one DICOM file per part; got %(type)s')
            % {"type": request.META.get("CONTENT_TYPE", "") or _("no Content-Type")},
        )
    boundary = params.get("boundary", "")
    if not boundary:
        raise DicomwebError(400, _("The Content-Type has no boundary parameter."))
    institution = upload_institution(request.user, request.GET.get("institution"))  # Http404: none or ambiguous
    outcomes = _Outcomes(service_root(request))
    problem = ""
    server_trouble = False
    actor = request.user if isinstance(request.user, User) else None  # endpoint() let only users in
    parts: list[_PartOutcome] = []
    with IngestSession(
        institution=institution, entry_point=EntryPoint.STOW, actor=actor, request=request, batch_size=UPLOAD_BATCH
    ) as session:
        try:
            # Split as it arrived, by the ASGI handler (imaging/dicomweb/asgi.py); else read and split now.
            split = getattr(request, "split_body", None)
            parts_of_body = split if isinstance(split, SplitBody) else MultipartReader(request, boundary, spool_dir())
            for number, part in enumerate(parts_of_body, start=1):
                part_media = content_type_params(part.content_type)[0] or DICOM
                if part_media != DICOM:
                    parts.append((CANNOT_UNDERSTAND, "", ""))
                    continue
                if study_uid is not None:
                    found = _study_uid_of(part.path)
                    if found is not None and found != study_uid:
                        parts.append((DOES_NOT_MATCH, *_part_uids(part.path)))
                        continue
                name = part.headers.get("content-location") or f"part {number}"
                parts.append(session.add_file(part.path, name=name[:200], sha256=part.sha256 or None))
        except MalformedMultipart as exc:
            problem = str(exc)
        except OSError as exc:  # spooling failed (a full or failing data disk): the server's trouble
            logger.exception("spooling a STOW-RS part failed")
            problem = _("the server could not spool a part (%(reason)s)") % {"reason": exc.strerror or exc}
            server_trouble = True
    # Only now, with the session closed, is every result final (durable and indexed, or not).
    for outcome in parts:
        if isinstance(outcome, IngestResult):
            outcomes.add(outcome)
        else:
            outcomes.fail(outcome[0], None, outcome[1], outcome[2])
    if server_trouble and not outcomes.stored:
        raise DicomwebError(
            503, _("The server could not take in the request: %(reason)s. Send it again later.") % {"reason": problem}
        )
    if problem and not outcomes.stored and not outcomes.failed:
        raise DicomwebError(
            400, _("The request body is not a valid multipart/related message: %(reason)s") % {"reason": problem}
        )
    if not outcomes.stored and not outcomes.failed:
        raise DicomwebError(400, _("The request holds no DICOM parts."))
    body: dict[str, Any] = {}
    retrieve_study = study_uid or (next(iter(outcomes.studies)) if len(outcomes.studies) == 1 else None)
    if retrieve_study:
        body["00081190"] = json_model.element("00081190", f"{outcomes.root}/studies/{retrieve_study}", "UR")
    if outcomes.failed:
        body["00081198"] = json_model.sequence(outcomes.failed)
    if outcomes.stored:
        body["00081199"] = json_model.sequence(outcomes.stored)
    if not outcomes.failed and not problem:
        status = 200
    elif outcomes.stored:
        status = 202
    else:
        status = 409
    response = json_response(request, body, response_type if response_type else DICOM_JSON, status=status)
    if problem:
        response["Warning"] = f'299 clinicnet-dicomweb: "The body was cut short: {problem}"'
    response["Cache-Control"] = "no-store"
    return response
