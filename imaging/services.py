"""Writes to the archive other than ingest: grants and priority.

Consultations (``consult``) call these; they never touch StudyGrant rows
themselves, so the rules of study visibility stay in ``imaging``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from clinicnet.audit.services import audit_record
from clinicnet.events import access_changed
from imaging.models import Instance, Study, StudyGrant
from institutions.models import Institution, Membership, User


def _members(institution_id: int) -> list[int]:
    return list(Membership.objects.filter(institution_id=institution_id).values_list("user_id", flat=True).distinct())


def study_grant(
    *, study: Study, institution: Institution, reason: str, granted_by: User | None, expires_at: datetime | None = None
) -> StudyGrant:
    """Let the readers of *institution* see *study* (until revoked or *expires_at*)."""
    grant = StudyGrant(
        study=study, institution=institution, reason=reason, granted_by=granted_by, expires_at=expires_at
    )
    grant.full_clean()
    grant.save()
    audit_record(
        action="study.grant",
        actor=granted_by,
        institution=study.institution,
        object_type="study",
        object_id=study.study_instance_uid,
        detail={"to": institution.code, "reason": reason, "grant": grant.pk},
    )
    return grant


def study_grant_end(*, grant: StudyGrant, at: datetime | None = None, actor: User | None = None) -> None:
    """End *grant* at *at* (now when None; a later time leaves a grace period)."""
    at = at or timezone.now()
    if at <= timezone.now():
        grant.revoked_at = at
        grant.save(update_fields=["revoked_at"])
        # Open viewers and co-reading sockets of that institution re-check now.
        user_ids = _members(grant.institution_id)
        transaction.on_commit(lambda: access_changed(user_ids))
    else:
        grant.expires_at = at if grant.expires_at is None else min(grant.expires_at, at)
        grant.save(update_fields=["expires_at"])
    audit_record(
        action="study.grant_end",
        actor=actor,
        institution=grant.study.institution,
        object_type="study",
        object_id=grant.study.study_instance_uid,
        detail={"to": grant.institution.code, "grant": grant.pk, "at": at.isoformat()},
    )


def study_set_priority(*, study: Study, priority: int) -> None:
    """Raise (or lower) a study's priority; emergency studies' previews jump the queue."""
    if study.priority == priority:
        return
    Study.objects.filter(pk=study.pk).update(priority=priority)
    study.priority = priority
    if priority >= Study.Priority.EMERGENCY:
        from imaging.tasks import schedule_previews

        pending = list(
            Instance.objects.filter(study=study, preview_status=Instance.PreviewStatus.PENDING).values_list(
                "pk", flat=True
            )
        )
        if pending:
            schedule_previews(study_id=study.pk, instance_ids=pending, priority=priority)
