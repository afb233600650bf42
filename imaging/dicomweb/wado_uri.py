"""WADO-URI (PS3.18 chapter 9) for older viewers: one object by query parameters.

``/dicomweb/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…``
with ``contentType`` ``application/dicom`` (the stored file; with
``transferSyntax=1.2.840.10008.1.2.1`` transcoded to Explicit VR Little
Endian) or ``image/jpeg`` / ``image/png`` rendered through the one renderer
with ``windowCenter``/``windowWidth``, ``rows``/``columns``, ``frameNumber``
and ``imageQuality``. The default content type is ``image/jpeg``, as the
standard says for image objects.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from imaging.dicom.rendering import SUPPORTED_MEDIA_TYPES
from imaging.dicomweb.common import DicomwebError, bad_request, endpoint
from imaging.dicomweb.negotiation import DICOM, EXPLICIT_VR_LITTLE_ENDIAN, parse_accept
from imaging.dicomweb.rendered import _single, options_from
from imaging.dicomweb.wado import _retrieve, instances_of, one_instance

UNSUPPORTED = ("anonymize", "annotation", "region", "presentationUID", "presentationSeriesUID")


def _positive(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name)
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise bad_request(_("%(name)s must be a whole number.") % {"name": name}) from None
    if number < 1:
        raise bad_request(_("%(name)s must be 1 or more.") % {"name": name})
    return number


@endpoint("GET")
def wado_uri(request: HttpRequest) -> HttpResponseBase:
    if request.GET.get("requestType") != "WADO":
        raise bad_request(_("requestType must be WADO."))
    missing = [name for name in ("studyUID", "seriesUID", "objectUID") if not request.GET.get(name)]
    if missing:
        raise bad_request(_("Missing parameter(s): %(names)s") % {"names": ", ".join(missing)})
    for name in UNSUPPORTED:
        if request.GET.get(name):
            raise bad_request(_("The %(name)s parameter is not supported.") % {"name": name})
    study_uid, series_uid, sop_uid = request.GET["studyUID"], request.GET["seriesUID"], request.GET["objectUID"]

    wanted = [r.media_type for r in parse_accept(request.GET.get("contentType") or "image/jpeg")]
    for media_type in wanted:
        if media_type in (DICOM, "application/*"):
            return _dicom(request, study_uid, series_uid, sop_uid)
        if media_type in SUPPORTED_MEDIA_TYPES or media_type in ("image/*", "*/*"):
            chosen = media_type if media_type in SUPPORTED_MEDIA_TYPES else "image/jpeg"
            return _image(request, chosen, study_uid, series_uid, sop_uid)
    raise DicomwebError(
        406,
        _("contentType must be application/dicom, image/jpeg or image/png; got %(type)s")
        % {"type": request.GET.get("contentType")},
    )


def _dicom(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponseBase:
    syntax = request.GET.get("transferSyntax")
    study, instances = instances_of(request, study_uid, series_uid, sop_uid)
    if syntax and syntax not in (EXPLICIT_VR_LITTLE_ENDIAN, instances[0].transfer_syntax_uid):
        raise DicomwebError(
            406,
            _("The object can be sent as stored (%(stored)s) or as Explicit VR Little Endian (%(explicit)s).")
            % {"stored": instances[0].transfer_syntax_uid, "explicit": EXPLICIT_VR_LITTLE_ENDIAN},
        )
    # Same path as WADO-RS: stored bytes, or transcoded when asked for another syntax.
    request.META["HTTP_ACCEPT"] = f"{DICOM}; transfer-syntax={syntax or '*'}"
    query = request.GET.copy()
    query.pop("accept", None)
    request.GET = query  # type: ignore[assignment]  # a mutable copy, read by the negotiation only
    response = _retrieve(request, study, instances, "instance")
    response["Content-Disposition"] = f'attachment; filename="{sop_uid}.dcm"'
    return response


def _image(request: HttpRequest, media_type: str, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
    window = None
    center, width = request.GET.get("windowCenter"), request.GET.get("windowWidth")
    if center or width:
        if not (center and width):
            raise bad_request(_("windowCenter and windowWidth go together."))
        window = f"{center},{width}"
    rows, columns = _positive(request, "rows"), _positive(request, "columns")
    viewport = None
    if rows or columns:
        viewport = (columns or 8192, rows or 8192)
    options = options_from(
        request,
        media_type=media_type,
        window=window or "",
        viewport=viewport,
        quality=request.GET.get("imageQuality") or "",
    )
    frame = _positive(request, "frameNumber") or 1
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    return _single(request, study, instance, frame - 1, options, "wado-uri")
