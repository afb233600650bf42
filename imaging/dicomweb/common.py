"""What every DICOMweb endpoint shares: authentication, CORS, errors, JSON, caching, streaming, audit.

Every view is wrapped in :func:`endpoint`, which

* answers CORS preflight requests and adds CORS headers for the origins in
  ``DICOMWEB_CORS_ORIGINS`` (a separately hosted viewer such as OHIF);
* authenticates with the session cookie (the built-in viewer) or an
  ``Authorization: Bearer`` personal access token (tools); nobody else gets
  past it (401);
* enforces CSRF on unsafe requests authenticated by the session, exactly as
  the rest of Django does; token requests carry no cookie and are exempt;
* turns :class:`DicomwebError`, Http404 and 406 into short answers a person
  can act on, never a 500 for bad input.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from clinicnet.audit.services import audit_record
from imaging.access import StudyKey
from imaging.dicomweb import json_model
from imaging.dicomweb.negotiation import NotAcceptable
from imaging.models import Study
from institutions.models import Institution
from institutions.tokens import bearer_token, user_for_token

View = TypeVar("View", bound=Callable[..., HttpResponseBase])
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# JSON answers smaller than this are sent as they are: gzip would not pay.
GZIP_MIN_BYTES = 1024
STREAM_CHUNK = 1024 * 1024
EXPOSED_HEADERS = "Content-Type, Content-Length, ETag, Last-Modified, Warning, Content-Location"


class DicomwebError(Exception):
    """A request the service cannot answer; ``status`` and a message for the person who sent it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> DicomwebError:
    return DicomwebError(400, message)


# --- CORS ------------------------------------------------------------------------------


def _allowed_origin(request: HttpRequest) -> str | None:
    origin = request.META.get("HTTP_ORIGIN")
    if not origin:
        return None
    allowed = settings.DICOMWEB_CORS_ORIGINS
    if "*" in allowed or origin in allowed:
        return origin
    return None


def _add_cors(request: HttpRequest, response: HttpResponseBase) -> None:
    origin = _allowed_origin(request)
    if origin is None:
        return
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    vary = response.get("Vary")
    response["Vary"] = f"{vary}, Origin" if vary else "Origin"


def _preflight(request: HttpRequest, methods: Iterable[str]) -> HttpResponse:
    response = HttpResponse(status=204)
    response["Allow"] = ", ".join([*methods, "OPTIONS"])
    if _allowed_origin(request) is not None:
        response["Access-Control-Allow-Methods"] = ", ".join([*methods, "OPTIONS"])
        response["Access-Control-Allow-Headers"] = (
            "Authorization, Accept, Content-Type, If-None-Match, If-Modified-Since, Range"
        )
        response["Access-Control-Max-Age"] = "600"
    _add_cors(request, response)
    return response


# --- errors ------------------------------------------------------------------------------


def error_response(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _not_acceptable(exc: NotAcceptable) -> HttpResponse:
    return error_response(
        406,
        _("None of the media types in the Accept header can be produced here; available: %(types)s")
        % {"types": ", ".join(exc.offered)},
    )


# --- the wrapper --------------------------------------------------------------------------


def _authenticate(request: HttpRequest) -> HttpResponse | None:
    """Set ``request.user`` from a bearer token; None when the request may go on."""
    raw = bearer_token(request)
    if raw is not None:
        user = user_for_token(raw)
        if user is None:
            response = error_response(401, _("The access token is unknown or revoked."))
            response["WWW-Authenticate"] = 'Bearer realm="clinicnet", error="invalid_token"'
            return response
        request.user = user
        request.dicomweb_token = True  # type: ignore[attr-defined]  # read by the CSRF check below
        return None
    if not request.user.is_authenticated:
        response = error_response(401, _("Sign in, or send a personal access token as 'Authorization: Bearer …'."))
        response["WWW-Authenticate"] = 'Bearer realm="clinicnet"'
        return response
    return None


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Session-authenticated unsafe requests need the CSRF token, like any Django form."""
    if request.method in SAFE_METHODS or getattr(request, "dicomweb_token", False):
        return None
    check = CsrfViewMiddleware(lambda _request: HttpResponse())
    check.process_request(request)
    rejected = check.process_view(request, lambda _request: HttpResponse(), (), {})
    if rejected is not None:
        return error_response(403, _("CSRF check failed: send the X-CSRFToken header with the csrftoken cookie."))
    return None


def endpoint(*methods: str) -> Callable[[View], View]:
    """Wrap a DICOMweb view: methods, CORS, authentication, CSRF and error answers."""

    def decorate(view: View) -> View:
        @csrf_exempt  # checked in _csrf_failure, where token requests are told apart
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method == "OPTIONS":
                return _preflight(request, methods)
            response: HttpResponseBase
            if request.method not in methods and not (request.method == "HEAD" and "GET" in methods):
                response = error_response(405, _("Method %(method)s is not allowed here.") % {"method": request.method})
                response["Allow"] = ", ".join(methods)
            else:
                response = _authenticate(request) or _csrf_failure(request) or _run(view, request, args, kwargs)
            _add_cors(request, response)
            if request.method == "HEAD":
                _drop_body(response)
            return response

        wrapper.undecorated = view  # type: ignore[attr-defined]  # for views that share one URL
        return wrapper  # type: ignore[return-value]  # same signature as view

    return decorate


def _drop_body(response: HttpResponseBase) -> None:
    """HEAD: the headers of GET, no body (not every server strips it)."""
    if isinstance(response, StreamingHttpResponse):
        # Not response.close(): that sends request_finished (closing the database
        # connection) before the session middleware is done. The unstarted
        # generator is closed with the response, as a resource closer.
        response.streaming_content = iter(())
    elif isinstance(response, HttpResponse):
        length = len(response.content)
        response.content = b""
        response["Content-Length"] = str(length)


def _run(view: Callable[..., HttpResponseBase], request: HttpRequest, args: Any, kwargs: Any) -> HttpResponseBase:
    try:
        return view(request, *args, **kwargs)
    except DicomwebError as exc:
        return error_response(exc.status, exc.message)
    except NotAcceptable as exc:
        return _not_acceptable(exc)
    except Http404:
        return error_response(404, _("Not found: no such study, series, instance or frame here."))


# --- JSON, caching --------------------------------------------------------------------------


def json_response(request: HttpRequest, body: bytes | Any, content_type: str, status: int = 200) -> HttpResponse:
    """DICOM JSON, gzip-compressed when the client accepts it and it is worth it."""
    data = body if isinstance(body, bytes) else json_model.dumps(body)
    # No charset parameter: DICOM JSON is always UTF-8, and some clients compare the media type exactly.
    response = HttpResponse(status=status, content_type=content_type)
    if len(data) >= GZIP_MIN_BYTES and "gzip" in request.META.get("HTTP_ACCEPT_ENCODING", ""):
        # Level 1: a 300-slice study's metadata shrinks about 8× in a few ms; level 6 is 3× slower for 10 %.
        data = gzip.compress(data, compresslevel=1, mtime=0)
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept, Accept-Encoding"
    response.content = data
    return response


def etag_of(*parts: object) -> str:
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:32]
    return f'"{digest}"'


def not_modified(request: HttpRequest, etag: str, last_modified: datetime | None) -> HttpResponse | None:
    """A 304 when the client's copy is current (If-None-Match wins over If-Modified-Since)."""
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        if "*" in tags or etag in tags:
            return _304(etag, last_modified)
        return None
    if_modified_since = request.META.get("HTTP_IF_MODIFIED_SINCE")
    if if_modified_since and last_modified is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return None
        if since is not None and int(last_modified.timestamp()) <= int(since.timestamp()):
            return _304(etag, last_modified)
    return None


def _304(etag: str, last_modified: datetime | None) -> HttpResponse:
    response = HttpResponse(status=304)
    set_validators(response, etag, last_modified)
    return response


def set_validators(response: HttpResponseBase, etag: str, last_modified: datetime | None) -> None:
    response["ETag"] = etag
    if last_modified is not None:
        response["Last-Modified"] = formatdate(last_modified.timestamp(), usegmt=True)
    # Patient data: a private cache may keep it but must ask again (the access check runs every time).
    response["Cache-Control"] = "private, no-cache"


# --- audit -------------------------------------------------------------------------------------


# A viewer reads a study as hundreds of requests (metadata, every frame, thumbnails): one row per
# person, study and kind of read within this many seconds says who read what, without a database
# write on every frame. Downloads of DICOM files are their own kind, so an export is never hidden
# behind an earlier look at the images.
RETRIEVE_AUDIT_WINDOW_SECONDS = 300
FILE_RESOURCES = frozenset({"study", "series", "instance"})


# This process's copy of the windows it has seen (key -> end, epoch seconds): the frames of a
# series then skip the cache's round trip (~0.7 ms on Redis) as well as the row. Never longer
# than the window recorded in the cache, so no read goes unrecorded past its end.
_covered_until: dict[str, float] = {}
_COVERED_MAX = 10_000


def _remember_window(key: str, ends: float, now: float) -> None:
    if ends <= now:
        return
    if len(_covered_until) >= _COVERED_MAX:
        # Requests run on several threads: prune from a snapshot, and tolerate a key another
        # thread removed first.
        for old, end in list(_covered_until.items()):
            if end <= now:
                _covered_until.pop(old, None)
        if len(_covered_until) >= _COVERED_MAX:
            _covered_until.clear()
    _covered_until[key] = ends


def audit_retrieve(request: HttpRequest, study: Study | StudyKey, resource: str, **detail: str) -> None:
    """Record that the requester read *study*: one ``study.retrieve`` row per user, study and kind a window.

    The first request of a window writes the row (``detail.resource`` names it, ``detail.window``
    the seconds it stands for); later ones within the window are covered by it. When the cache
    cannot answer, every request is recorded, as before.
    """
    window = int(getattr(settings, "DICOMWEB_RETRIEVE_AUDIT_SECONDS", RETRIEVE_AUDIT_WINDOW_SECONDS))
    kind = "files" if resource in FILE_RESOURCES else "images"
    # The study's creation time keeps keys apart across databases that reuse primary keys (test runs).
    key = f"dicomweb:audit:{getattr(request.user, 'pk', None)}:{study.pk}:{study.created_at.timestamp():.6f}:{kind}"
    if window > 0:
        now = time.time()
        if _covered_until.get(key, 0.0) > now:
            return
        ends = now + window
        try:
            first = cache.add(key, ends, timeout=window)
            if not first:  # another request (or process) recorded this window: when does it end?
                ends = float(cache.get(key) or 0.0)
        except Exception:  # noqa: BLE001  (an unreachable cache must not cost an audit row)
            first, ends = True, 0.0
        _remember_window(key, ends, now)
        if not first:
            return
    # Per-frame requests know the study by its key alone; its institution is read only for the row.
    institution = study.institution if isinstance(study, Study) else Institution.objects.get(pk=study.institution_id)
    audit_record(
        action="study.retrieve",
        request=request,
        institution=institution,
        object_type="study",
        object_id=study.study_instance_uid,
        detail={
            "resource": resource,
            **{key: value for key, value in detail.items() if value},
            **({"window": window} if window > 0 else {}),
        },
    )
