"""The radiologist's viewer page: a shell that the Cornerstone3D bundle fills in.

The page carries no pixels and no PHI beyond what the access check already
allows; the bundle fetches everything through the DICOMweb endpoints, which
check access again on every request.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from clinicnet.audit.services import audit_record
from imaging.access import access_study

# The viewer's own UI strings live in frontend/src/i18n.ts; it knows these.
VIEWER_LANGUAGES = ("ko", "en")


def _viewer_language() -> str:
    language = (get_language() or "ko").split("-")[0]
    return language if language in VIEWER_LANGUAGES else "ko"


@require_GET
@login_required
def study_viewer(request: HttpRequest, study_uid: str) -> HttpResponse:
    study = access_study(request.user, study_uid)  # Http404 for unknown and forbidden alike
    audit_record(
        action="study.view",
        request=request,
        object_type="study",
        object_id=study_uid,
        institution=study.institution,
    )
    config = {
        "studyInstanceUID": study_uid,
        # Same origin, so the session cookie authenticates every DICOMweb call.
        "dicomwebRoot": "/dicomweb",
        "language": _viewer_language(),
        "homeUrl": reverse("home"),
    }
    response = render(request, "imaging/viewer.html", {"study": study, "viewer_config": config})
    # Patient data: never from a shared or browser cache.
    response["Cache-Control"] = "no-store, private"
    return response
