"""Reads for the consultation pages: worklists, counters and the study panel."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from consult.access import READER_ROLES, visible_consultations
from consult.models import Consultation, Report
from imaging.models import Study
from institutions import permissions
from institutions.models import User

Status = Consultation.Status


def _with_list_data(queryset: QuerySet[Consultation]) -> QuerySet[Consultation]:
    final = Report.objects.filter(consultation=OuterRef("pk"), status=Report.Status.FINAL)
    return queryset.select_related(
        "study__patient", "requesting_institution", "target_institution", "requested_by", "named_reader", "accepted_by"
    ).annotate(has_final_report=Exists(final))


def incoming(user: User | object) -> QuerySet[Consultation]:
    """Requests waiting for a reader at the user's reading institutions: emergency first, then oldest first."""
    institutions = permissions.institutions_of(user, roles=READER_ROLES)
    return _with_list_data(
        Consultation.objects.filter(target_institution__in=institutions, status=Status.REQUESTED)
    ).order_by("-priority", "created_at", "id")


def my_reading(user: User | object) -> QuerySet[Consultation]:
    """What the user accepted and has not reported yet, emergency first."""
    institutions = permissions.institutions_of(user, roles=READER_ROLES)
    return _with_list_data(
        Consultation.objects.filter(
            target_institution__in=institutions, accepted_by=user, status__in=[Status.ACCEPTED, Status.READING]
        )
    ).order_by("-priority", "due_at", "id")


def reader_counters(user: User | object) -> dict[str, int]:
    institutions = permissions.institutions_of(user, roles=READER_ROLES)
    now = timezone.now()
    active = Consultation.objects.filter(target_institution__in=institutions, status__in=Consultation.ACTIVE_STATUSES)
    counts = active.aggregate(
        waiting=Count("pk", filter=Q(status=Status.REQUESTED)),
        emergency=Count("pk", filter=Q(status=Status.REQUESTED, priority=Consultation.Priority.EMERGENCY)),
        overdue=Count("pk", filter=Q(due_at__lt=now)),
        in_reading=Count("pk", filter=Q(status__in=[Status.ACCEPTED, Status.READING])),
        mine=Count("pk", filter=Q(status__in=[Status.ACCEPTED, Status.READING], accepted_by=user)),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def recently_reported(user: User | object, limit: int = 20) -> QuerySet[Consultation]:
    institutions = permissions.institutions_of(user, roles=READER_ROLES)
    return _with_list_data(
        Consultation.objects.filter(
            target_institution__in=institutions, status__in=[Status.REPORTED, Status.CLOSED], accepted_by=user
        )
    ).order_by("-reported_at")[:limit]


def requests(user: User | object, status: str = "") -> QuerySet[Consultation]:
    """The requests of the user's institutions, newest first."""
    institutions = permissions.institutions_of(user)
    queryset = Consultation.objects.filter(requesting_institution__in=institutions)
    if status == "open":
        queryset = queryset.filter(status__in=Consultation.OPEN_STATUSES)
    elif status in Status.values:
        queryset = queryset.filter(status=status)
    return _with_list_data(queryset).order_by("-created_at", "-id")


def request_counters(user: User | object) -> dict[str, int]:
    institutions = permissions.institutions_of(user)
    now = timezone.now()
    counts = Consultation.objects.filter(requesting_institution__in=institutions).aggregate(
        waiting=Count("pk", filter=Q(status__in=Consultation.ACTIVE_STATUSES)),
        overdue=Count("pk", filter=Q(status__in=Consultation.ACTIVE_STATUSES, due_at__lt=now)),
        reported=Count("pk", filter=Q(status=Status.REPORTED)),
    )
    return {key: int(value or 0) for key, value in counts.items()}


def study_panel_context(user: User | object, study: Study) -> dict[str, Any]:
    """What ``consult/includes/study_panel.html`` needs for *study* as *user* sees it.

    Use it as ``context.update(study_panel_context(request.user, study))``.
    """
    consultations = list(
        _with_list_data(visible_consultations(user).filter(study=study)).order_by("-created_at", "-id")
    )
    finals = {
        report.consultation_id: report
        for report in Report.objects.filter(consultation__in=[c.pk for c in consultations], status=Report.Status.FINAL)
        .select_related("signed_by")
        .order_by("version")  # the latest signed version wins
    }
    for consultation in consultations:
        consultation.panel_report = finals.get(consultation.pk)  # type: ignore[attr-defined]
    can_request = permissions.can_act_for(user, study.institution)
    return {
        "consult_panel": {
            "study": study,
            "consultations": consultations,
            "can_request": can_request,
            "request_url": reverse("consultation-new", args=[study.study_instance_uid]) if can_request else "",
        }
    }
