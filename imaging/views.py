"""Archive pages: upload, the study list and a study's page."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from clinicnet.audit.services import audit_record
from imaging import access
from imaging.archive import expand_upload, ingest_entry
from imaging.dicom.names import fold_for_search
from imaging.ingest import UPLOAD_BATCH, EntryPoint, IngestResult, IngestSession, spool_dir
from imaging.models import Instance, Series, Study
from imaging.panels import study_panels
from institutions.models import Institution
from institutions.permissions import request_user

PAGE_SIZE = 25
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _spooled_path(upload: UploadedFile) -> tuple[Path, bool]:
    """A local path for *upload*; True when we made a copy that must be removed."""
    if isinstance(upload, TemporaryUploadedFile):
        return Path(upload.temporary_file_path()), False
    # Small uploads are kept in memory by Django; the ingest wants a file.
    import tempfile

    with tempfile.NamedTemporaryFile(delete=False, dir=spool_dir(), suffix=".upload") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return Path(handle.name), True


def ingest_uploaded_file(
    *, request: HttpRequest, upload: UploadedFile, institution_code: str | None, entry_point: str, name: str = ""
) -> list[IngestResult]:
    """Ingest one uploaded file (a DICOM file or a zip) for the request's user.

    Shared by the upload page and the REST API so both answer alike.
    """
    institution = access.upload_institution(request.user, institution_code)
    path, remove = _spooled_path(upload)
    try:
        with IngestSession(
            institution=institution,
            entry_point=entry_point,
            actor=request_user(request),
            request=request,
            batch_size=UPLOAD_BATCH,  # results are read after the session closes
        ) as session:
            for entry in expand_upload(path, name or upload.name or "upload"):
                ingest_entry(session, entry)
        return session.results
    finally:
        if remove:
            path.unlink(missing_ok=True)


@login_required
@require_GET
def upload_page(request: HttpRequest) -> HttpResponse:
    institutions = list(access.upload_institutions(request.user).order_by("code"))
    if not institutions:
        raise Http404("No institution to upload for")
    config = {
        "endpoint": reverse("upload-file"),
        "strings": {
            "stored": _("stored"),
            "duplicate": _("already stored"),
            "conflict": _("conflict"),
            "rejected": _("rejected"),
            "skipped": _("skipped"),
            "uploading": _("uploading"),
            "waiting": _("waiting"),
            "checking": _("checking"),
            "failed": _("upload failed"),
            "progress": _("%(done)s of %(total)s files, %(mb)s MB sent"),
            "summary": _(
                "%(stored)s stored, %(duplicate)s already stored, %(conflict)s conflicts, "
                "%(rejected)s rejected, %(skipped)s skipped"
            ),
        },
    }
    return render(request, "imaging/upload.html", {"institutions": institutions, "upload_config": config})


@login_required
@require_POST
def upload_file(request: HttpRequest) -> JsonResponse:
    """One file per request (the page sends files one by one for per-file progress)."""
    if not (request.content_type or "").startswith("multipart/form-data"):
        return JsonResponse({"error": _("Send the file as multipart/form-data in the field “file”.")}, status=415)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": _("No file was sent.")}, status=400)
    name = (request.POST.get("relative_path") or upload.name or "upload")[:300]
    try:
        results = ingest_uploaded_file(
            request=request,
            upload=upload,
            institution_code=request.POST.get("institution") or None,
            entry_point=EntryPoint.WEB,
            name=name,
        )
    except Http404:
        return JsonResponse({"error": _("You cannot upload for that institution.")}, status=404)
    return JsonResponse({"results": [result.as_dict() for result in results]})


# --- Study list -------------------------------------------------------------------


def filter_studies(queryset: QuerySet[Study], params: dict[str, str]) -> QuerySet[Study]:
    """Apply the study-list search: name or ID, accession, date range, modality, status."""
    query = params.get("q", "").strip()
    if query:
        folded = fold_for_search(query)
        queryset = queryset.filter(
            Q(patient__name_search__contains=folded)
            | Q(patient__patient_id__iexact=query)
            | Q(accession_number__iexact=query)
        )
    date_from = params.get("from", "")
    if _DATE.match(date_from):
        queryset = queryset.filter(study_date__gte=date.fromisoformat(date_from))
    date_to = params.get("to", "")
    if _DATE.match(date_to):
        queryset = queryset.filter(study_date__lte=date.fromisoformat(date_to))
    modality = params.get("modality", "").strip().upper()
    if modality:
        queryset = queryset.filter(series__modality=modality).distinct()
    status = params.get("status", "")
    if status in Study.Status.values:
        queryset = queryset.filter(status=status)
    priority = params.get("priority", "")
    if priority.isdigit() and int(priority) in Study.Priority.values:
        queryset = queryset.filter(priority=int(priority))
    institution = params.get("institution", "")
    if institution:
        queryset = queryset.filter(institution__code=institution)
    return queryset


def _first_series_prefetch() -> Prefetch[Any]:
    return Prefetch("series", queryset=Series.objects.order_by("series_number", "id"))


# Sort keys of the study list / worklist: URL value → ORDER BY.
SORTS = {
    "date": ("-study_date", "-created_at", "-id"),
    "-date": ("study_date", "created_at", "id"),
    "received": ("-created_at", "-id"),
    "patient": ("patient__name_search", "-study_date", "-id"),
    "modality": ("modalities", "-study_date", "-id"),
    "institution": ("institution__code", "-study_date", "-id"),
    "status": ("status", "-study_date", "-id"),
    "priority": ("-priority", "-created_at", "-id"),
}


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    """The worklist: every study the user may read, searchable, sortable, live."""
    visible = access.visible_studies(request.user)
    studies = filter_studies(visible, request.GET.dict())
    sort = request.GET.get("sort", "priority")
    if sort not in SORTS:
        sort = "priority"
    studies = studies.select_related("patient", "institution").prefetch_related(_first_series_prefetch())
    studies = studies.order_by(*SORTS[sort])
    page = Paginator(studies, PAGE_SIZE).get_page(request.GET.get("page"))
    modalities = ["CT", "MR", "CR", "DX", "US", "MG", "XA", "PX", "IO", "NM", "PT", "OT"]
    institutions = (
        Institution.objects.filter(pk__in=visible.values("institution_id"))
        .order_by("code")
        .only("code", "name_ko", "name_en")
    )
    keep = {k: v for k, v in request.GET.items() if k not in ("page", "fragment")}
    context = {
        "page": page,
        "params": request.GET,
        "sort": sort,
        "modalities": modalities,
        "statuses": Study.Status.choices,
        "priorities": Study.Priority.choices,
        "institutions": institutions,
        "can_upload": access.upload_institutions(request.user).exists(),
        "query_string": urlencode(keep),
        "filter_string": urlencode({k: v for k, v in keep.items() if k != "sort"}),
    }
    template = (
        "imaging/includes/study_rows.html" if request.GET.get("fragment") == "rows" else "imaging/study_list.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def study_detail(request: HttpRequest, study_uid: str) -> HttpResponse:
    study = access.access_study(request.user, study_uid)
    series = list(
        study.series.prefetch_related(
            Prefetch("instances", queryset=Instance.objects.order_by("instance_number", "id").defer("metadata"))
        )
    )
    failures = [
        instance
        for item in series
        for instance in item.instances.all()
        if instance.preview_status in (Instance.PreviewStatus.FAILED, Instance.PreviewStatus.NONE)
    ]
    audit_record(
        action="study.view",
        request=request,
        institution=study.institution,
        object_type="study",
        object_id=study.study_instance_uid,
    )
    context: dict[str, Any] = {
        "study": study,
        "series_list": series,
        "failures": failures,
        "panels": study_panels(request, study),
    }
    response = render(request, "imaging/study_detail.html", context)
    response["Cache-Control"] = "no-store, private"
    return response
