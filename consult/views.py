"""Consultation pages: request, worklists, the consultation itself, reports, notifications.

Every view finds its consultation through ``consult.access.access_consultation``
(404 for unknown and forbidden alike) and its study through ``imaging.access``;
writes go through ``consult.services``, whose exceptions become 400, 403 or
409 answers here (JSON when the client asks for JSON).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from clinicnet.audit.services import audit_record
from consult import notify, selectors, services
from consult.access import READER_ROLES, access_consultation, is_requester, is_target_reader
from consult.forms import CommentForm, ConsultationForm
from consult.models import Consultation, KeyImage, Notification, Report
from imaging import storage
from imaging.access import access_study, visible_studies
from imaging.models import Instance
from institutions import permissions
from institutions.models import User


def _action_label(action: str) -> str:
    labels = {
        "accept": _("Accept"),
        "start": _("Start reading"),
        "close": _("Close"),
        "decline": _("Decline"),
        "cancel": _("Cancel request"),
        "report": _("Sign the report"),
    }
    return labels[action]


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _problem(
    request: HttpRequest,
    status: int,
    message: str,
    consultation: Consultation | None = None,
    allowed: Sequence[str] = (),
) -> HttpResponseBase:
    """A 4xx answer a person can act on: the reason, and what is possible instead."""
    if _wants_json(request):
        payload: dict[str, Any] = {"error": message}
        if consultation is not None:
            payload["status"] = consultation.status
        if status == 409:
            payload["allowed"] = list(allowed)
        return JsonResponse(payload, status=status)
    context = {
        "message": message,
        "consultation": consultation,
        "allowed": [_action_label(action) for action in allowed],
        "status_code": status,
    }
    return render(request, "consult/problem.html", context, status=status)


def _error_answer(request: HttpRequest, error: Exception, consultation: Consultation | None) -> HttpResponseBase:
    if isinstance(error, services.TransitionConflict):
        return _problem(request, 409, error.message, consultation, error.allowed)
    if isinstance(error, PermissionDenied):
        return _problem(request, 403, str(error) or _("You are not allowed to do that."), consultation)
    if isinstance(error, ValidationError):
        return _problem(request, 400, " ".join(error.messages), consultation)
    raise error


def _actor(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _no_store(response: HttpResponseBase) -> HttpResponseBase:
    # Patient data: never from a shared or browser cache.
    response["Cache-Control"] = "no-store, private"
    return response


# --- Worklists ----------------------------------------------------------------------


@require_GET
@login_required
def consultation_home(request: HttpRequest) -> HttpResponseBase:
    if permissions.institutions_of(request.user, roles=READER_ROLES).exists():
        return redirect("consultation-incoming")
    return redirect("consultation-requests")


@require_GET
@login_required
def incoming(request: HttpRequest) -> HttpResponseBase:
    """The readers' worklist: waiting requests (emergency first, then by age), their own reading list."""
    if not permissions.institutions_of(request.user, roles=READER_ROLES).exists():
        raise Http404("Not a reader")
    context = {
        "incoming": list(selectors.incoming(request.user)[:200]),
        "mine": list(selectors.my_reading(request.user)),
        "reported": list(selectors.recently_reported(request.user)),
        "counters": selectors.reader_counters(request.user),
        "now": timezone.now(),
    }
    template = "consult/includes/incoming_lists.html" if request.GET.get("partial") else "consult/incoming.html"
    return _no_store(render(request, template, context))


@require_GET
@login_required
def request_list(request: HttpRequest) -> HttpResponseBase:
    """The clinics' list: their requests with status and due time, and the report once final."""
    if not permissions.active_memberships(request.user).exists():
        raise Http404("No institution")
    status = request.GET.get("status", "")
    page = Paginator(selectors.requests(request.user, status), 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "statuses": Consultation.Status.choices,
        "counters": selectors.request_counters(request.user),
    }
    template = "consult/includes/request_rows.html" if request.GET.get("partial") else "consult/requests.html"
    return _no_store(render(request, template, context))


# --- Requesting a reading -------------------------------------------------------------


@login_required
def consultation_new(request: HttpRequest, study_uid: str) -> HttpResponseBase:
    study = access_study(request.user, study_uid)
    # Seeing a study through a grant is not owning it: only its own institution's members ask.
    if not permissions.can_act_for(request.user, study.institution):
        raise Http404("No such study")
    form = ConsultationForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            consultation = services.consultation_create(
                actor=_actor(request),
                study=study,
                target=data["target"],
                priority=data["priority"],
                clinical_question=data["clinical_question"],
                clinical_history=data["clinical_history"],
                named_reader=data["named_reader"],
                series=list(data["series"]),
                related_studies=list(data["related_studies"]),
                request=request,
            )
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, error)
        except PermissionDenied as error:
            return _error_answer(request, error, None)
        else:
            messages.success(request, _("The reading request was sent."))
            return redirect("consultation-detail", consultation.uuid)
    status = 400 if request.method == "POST" else 200
    return _no_store(render(request, "consult/new.html", {"study": study, "form": form}, status=status))


# --- One consultation -------------------------------------------------------------------


def _instances_for_key_images(consultation: Consultation) -> Any:
    series_ids = list(consultation.series.values_list("pk", flat=True))
    return (
        Instance.objects.filter(series_id__in=series_ids, study_id=consultation.study_id)
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )


@require_GET
@login_required
def consultation_detail(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    consultation = access_consultation(request.user, consultation_uuid)
    reader = is_target_reader(request.user, consultation)
    requester = is_requester(request.user, consultation)
    audit_record(
        action="consultation.view",
        request=request,
        institution=consultation.requesting_institution,
        object_type="consultation",
        object_id=str(consultation.uuid),
    )
    notify.mark_read(user=_actor(request), notifications=consultation.notifications.filter(user=_actor(request)))
    finals = list(consultation.reports.filter(status=Report.Status.FINAL).select_related("signed_by"))
    draft = services.report_draft(consultation=consultation) if reader else None
    comments = consultation.comments.select_related("author").prefetch_related("key_images__instance__series")
    study_visible = visible_studies(request.user).filter(pk=consultation.study_id).exists()
    context = {
        "consultation": consultation,
        "study": consultation.study,
        "is_reader": reader,
        "is_requester": requester,
        "actions": services.available_actions(request.user, consultation),
        "action_labels": {name: _action_label(name) for name in services.USER_ACTIONS},
        "final": finals[-1] if finals else None,
        "finals": finals,
        "draft": draft,
        "comments": comments,
        "comment_form": CommentForm(instances=_instances_for_key_images(consultation)),
        "transitions": consultation.transitions.select_related("actor"),
        "attached_series": consultation.series.order_by("series_number", "id"),
        "related_studies": consultation.related_studies.order_by("-study_date"),
        "viewer_url": reverse("study-viewer", args=[consultation.study.study_instance_uid]) if study_visible else "",
        "can_write_report": reader
        and (
            consultation.status in (Consultation.Status.ACCEPTED, Consultation.Status.READING)
            or (consultation.status == Consultation.Status.REPORTED and draft is not None)
        ),
        "can_add_addendum": reader and consultation.status == Consultation.Status.REPORTED and draft is None,
    }
    return _no_store(render(request, "consult/detail.html", context))


@require_GET
@login_required
def consultation_state(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    """What the consultation page shows, in brief: it checks this when its socket (re)connects."""
    consultation = access_consultation(request.user, consultation_uuid)
    final = consultation.final_report()
    return _no_store(
        JsonResponse(
            {
                "status": consultation.status,
                "version": consultation.version,
                "report_version": final.version if final else 0,
                "comments": consultation.comments.count(),
            }
        )
    )


@require_POST
@login_required
def consultation_transition(request: HttpRequest, consultation_uuid: str, action: str) -> HttpResponseBase:
    consultation = access_consultation(request.user, consultation_uuid)
    try:
        services.consultation_transition(
            consultation=consultation,
            action=action,
            actor=_actor(request),
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except (services.TransitionConflict, PermissionDenied, ValidationError) as error:
        return _error_answer(request, error, consultation)
    if _wants_json(request):
        return JsonResponse({"status": consultation.status, "version": consultation.version})
    if action == "accept":
        messages.success(request, _("Accepted. The study is yours to read."))
    return redirect("consultation-detail", consultation.uuid)


@require_POST
@login_required
def comment_create(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    consultation = access_consultation(request.user, consultation_uuid)
    form = CommentForm(request.POST, instances=_instances_for_key_images(consultation))
    if not form.is_valid():
        return _problem(request, 400, " ".join(str(e) for errors in form.errors.values() for e in errors), consultation)
    key_images = []
    if form.cleaned_data["key_image"] is not None:
        key_images.append((form.cleaned_data["key_image"], (form.cleaned_data["frame"] or 1) - 1))
    try:
        services.comment_add(
            consultation=consultation,
            actor=_actor(request),
            body=form.cleaned_data["body"],
            key_images=key_images,
            request=request,
        )
    except (services.TransitionConflict, PermissionDenied, ValidationError) as error:
        return _error_answer(request, error, consultation)
    return redirect(reverse("consultation-detail", args=[consultation.uuid]) + "#comments")


@require_GET
@login_required
def key_image(request: HttpRequest, consultation_uuid: str, key_image_id: int) -> HttpResponseBase:
    """The preview of a key image: the consultation's check, then the study's, then storage."""
    consultation = access_consultation(request.user, consultation_uuid)
    image = (
        KeyImage.objects.filter(pk=key_image_id, comment__consultation=consultation).select_related("instance").first()
    )
    if image is None or not visible_studies(request.user).filter(pk=image.instance.study_id).exists():
        raise Http404("No such image")
    key = storage.preview_key(image.instance.storage_key, image.frame)
    try:
        # A preview is some tens of kilobytes: read whole and sent in one piece.
        with storage.open_file(key) as handle:
            content = handle.read()
    except OSError:  # not rendered yet, or gone
        raise Http404("The preview is not ready yet") from None
    return _no_store(HttpResponse(content, content_type="image/jpeg"))


# --- Reports ----------------------------------------------------------------------------


def _require_reader(request: HttpRequest, consultation: Consultation) -> None:
    if not is_target_reader(request.user, consultation):
        # Requesters see only signed reports, on the consultation page; the editor does not exist for them.
        raise Http404("No such report")


@login_required
def report_edit(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    consultation = access_consultation(request.user, consultation_uuid)
    _require_reader(request, consultation)
    draft = services.report_draft(consultation=consultation)
    if draft is None:
        if consultation.status not in (Consultation.Status.ACCEPTED, Consultation.Status.READING):
            return redirect("consultation-detail", consultation.uuid)
        # Looking is not writing: the draft (and the reading) start with the first save.
        draft = services.report_unsaved_draft(consultation=consultation, actor=_actor(request))
    templates = {kind: services.report_template(kind)[0] for kind in Report.Kind.values}
    context = {
        "consultation": consultation,
        "study": consultation.study,
        "report": draft,
        "kinds": Report.Kind.choices,
        "templates": templates,
        "finals": consultation.reports.filter(status=Report.Status.FINAL).select_related("signed_by"),
        "viewer_url": reverse("study-viewer", args=[consultation.study.study_instance_uid]),
    }
    return _no_store(render(request, "consult/report_edit.html", context))


def _report_fields(request: HttpRequest) -> dict[str, str]:
    return {name: request.POST[name] for name in ("kind", "findings", "impression", "addendum") if name in request.POST}


@require_POST
@login_required
def report_draft_save(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    """Autosave: the editor posts here a moment after each change."""
    consultation = access_consultation(request.user, consultation_uuid)
    _require_reader(request, consultation)
    try:
        draft = services.report_save_draft(
            consultation=consultation, actor=_actor(request), request=request, **_report_fields(request)
        )
    except (services.TransitionConflict, PermissionDenied, ValidationError) as error:
        return _error_answer(request, error, consultation)
    saved = timezone.localtime(draft.updated_at)
    return JsonResponse(
        {"version": draft.version, "saved_at": time_format(saved, "H:i"), "saved_at_iso": saved.isoformat()}
    )


@require_POST
@login_required
def report_sign(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    """Save what the form holds, then sign: the signed version is locked."""
    consultation = access_consultation(request.user, consultation_uuid)
    _require_reader(request, consultation)
    try:
        fields = _report_fields(request)
        if fields:
            services.report_save_draft(consultation=consultation, actor=_actor(request), request=request, **fields)
        report = services.report_sign(consultation=consultation, actor=_actor(request), request=request)
    except (services.TransitionConflict, PermissionDenied, ValidationError) as error:
        return _error_answer(request, error, consultation)
    if _wants_json(request):
        return JsonResponse({"version": report.version, "sha256": report.content_hash, "status": consultation.status})
    messages.success(request, _("The report is signed (version %(version)s).") % {"version": report.version})
    return redirect("consultation-detail", consultation.uuid)


@require_POST
@login_required
def report_addendum(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    consultation = access_consultation(request.user, consultation_uuid)
    _require_reader(request, consultation)
    try:
        services.report_start_addendum(consultation=consultation, actor=_actor(request), request=request)
    except (services.TransitionConflict, PermissionDenied, ValidationError) as error:
        return _error_answer(request, error, consultation)
    return redirect("report-edit", consultation.uuid)


def _signed_version(request: HttpRequest, consultation: Consultation) -> tuple[Report, list[Report]]:
    finals = list(consultation.reports.filter(status=Report.Status.FINAL).select_related("signed_by"))
    if not finals:
        raise Http404("No signed report yet")
    wanted = request.GET.get("version")
    if wanted is None:
        return finals[-1], finals
    for report in finals:
        if str(report.version) == wanted:
            return report, finals
    raise Http404("No such version")


@require_GET
@login_required
def report_print(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    consultation = access_consultation(request.user, consultation_uuid)
    report, finals = _signed_version(request, consultation)
    audit_record(
        action="report.view",
        request=request,
        institution=consultation.requesting_institution,
        object_type="consultation",
        object_id=str(consultation.uuid),
        detail={"version": report.version, "format": "html"},
    )
    context = {"consultation": consultation, "study": consultation.study, "report": report, "finals": finals}
    return _no_store(render(request, "consult/report_print.html", context))


@require_GET
@login_required
def report_pdf(request: HttpRequest, consultation_uuid: str) -> HttpResponseBase:
    from consult.pdf import FontMissing
    from consult.pdf import report_pdf as make_pdf

    consultation = access_consultation(request.user, consultation_uuid)
    report, finals = _signed_version(request, consultation)
    try:
        data = make_pdf(consultation, report, finals)
    except FontMissing:
        return _problem(
            request,
            503,
            _("The PDF cannot be made: the Korean font is not installed on the server. Use the printable page."),
            consultation,
        )
    audit_record(
        action="report.view",
        request=request,
        institution=consultation.requesting_institution,
        object_type="consultation",
        object_id=str(consultation.uuid),
        detail={"version": report.version, "format": "pdf"},
    )
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="report-{consultation.uuid}-v{report.version}.pdf"'
    return _no_store(response)


# --- Notifications -------------------------------------------------------------------------


@require_GET
@login_required
def notification_list(request: HttpRequest) -> HttpResponseBase:
    notifications = (
        Notification.objects.filter(user=_actor(request))
        .select_related(
            "actor", "consultation__study", "consultation__requesting_institution", "consultation__target_institution"
        )
        .order_by("-created_at", "-id")
    )
    page = Paginator(notifications, 50).get_page(request.GET.get("page"))
    rows = [(n, notify.notification_text(n), notify.notification_url(n)) for n in page]
    return _no_store(render(request, "consult/notifications.html", {"page": page, "rows": rows}))


@require_POST
@login_required
def notification_read_all(request: HttpRequest) -> HttpResponseBase:
    notify.mark_read(user=_actor(request))
    if _wants_json(request):
        return JsonResponse({"unread": 0})
    return redirect("notification-list")


@require_GET
@login_required
def notification_unread(request: HttpRequest) -> HttpResponseBase:
    """The unread count, for pages that (re)connect and want to be sure."""
    return JsonResponse({"unread": notify.unread_count(request.user)})
