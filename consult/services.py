"""Every write to consultations, comments and reports.

Functions are keyword-only and named ``<entity>_<action>``. Each one checks
who may do it, changes the rows, records an audit event and notifies the
people concerned (after the transaction commits). Views only translate the
exceptions raised here into answers:

* ``django.core.exceptions.ValidationError`` — bad input (400),
* ``django.core.exceptions.PermissionDenied`` — the wrong person (403),
* :class:`TransitionConflict` — not possible in the current status (409),
  carrying the transitions that are allowed from it.

The status machine::

    requested ──accept──► accepted ──start──► reading ──(report signed)──► reported ──close──► closed
        │                    │                   │
        └──────── decline (readers, with a reason) / cancel (requester) ──► declined / cancelled
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from clinicnet.audit.services import audit_record
from consult import notify
from consult.access import is_requester, is_target_reader
from consult.models import Comment, Consultation, ConsultationTransition, KeyImage, Notification, Report
from imaging import services as imaging_services
from imaging.models import Instance, Series, Study
from imaging.previews import MAX_PREVIEW_FRAMES
from institutions import permissions
from institutions.models import Institution, Membership, Role, User

Status = Consultation.Status


class TransitionConflict(Exception):
    """The consultation is not in a status that allows this; say which actions are allowed."""

    def __init__(self, consultation: Consultation, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = consultation.status
        self.allowed = allowed_actions(consultation.status)


# --- The status machine ---------------------------------------------------------

READER = "reader"
REQUESTER = "requester"
EITHER = "either"


@dataclass(frozen=True)
class Action:
    sources: tuple[str, ...]
    target: str
    side: str  # who may do it: READER, REQUESTER or EITHER
    stamp: str  # the timestamp field set on the consultation


ACTIONS: dict[str, Action] = {
    "accept": Action((Status.REQUESTED,), Status.ACCEPTED, READER, "accepted_at"),
    "start": Action((Status.ACCEPTED,), Status.READING, READER, "reading_at"),
    # Only through report_sign: a consultation is reported when its report is signed.
    "report": Action((Status.READING,), Status.REPORTED, READER, "reported_at"),
    "close": Action((Status.REPORTED,), Status.CLOSED, EITHER, "closed_at"),
    "decline": Action(Consultation.ACTIVE_STATUSES, Status.DECLINED, READER, "declined_at"),
    "cancel": Action(Consultation.ACTIVE_STATUSES, Status.CANCELLED, REQUESTER, "cancelled_at"),
}
# The actions a person triggers directly (buttons and the transition URL).
USER_ACTIONS = ("accept", "start", "close", "decline", "cancel")


def allowed_actions(status: str) -> list[str]:
    """The actions the status machine allows from *status* (whoever asks)."""
    return [name for name, action in ACTIONS.items() if status in action.sources]


def _on_side(user: User | object, consultation: Consultation, side: str) -> bool:
    if side == READER:
        return is_target_reader(user, consultation)
    if side == REQUESTER:
        return is_requester(user, consultation)
    return is_target_reader(user, consultation) or is_requester(user, consultation)


def available_actions(user: User | object, consultation: Consultation) -> list[str]:
    """The buttons to show *user*: legal now and on their side."""
    return [
        name
        for name in USER_ACTIONS
        if consultation.status in ACTIONS[name].sources and _on_side(user, consultation, ACTIONS[name].side)
    ]


def _side_message(action: str, consultation: Consultation) -> str:
    side = ACTIONS[action].side
    if side == READER:
        return _("Only a reader at %(institution)s can do this.") % {
            "institution": consultation.target_institution.display_name
        }
    if side == REQUESTER:
        return _("Only %(institution)s can cancel its request.") % {
            "institution": consultation.requesting_institution.display_name
        }
    return _("You are not part of this consultation.")


def _transition(
    *,
    consultation: Consultation,
    action: str,
    actor: User,
    note: str = "",
    fields: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> Consultation:
    """Move *consultation* along *action*: conditional on the status and version we loaded."""
    spec = ACTIONS[action]
    if not _on_side(actor, consultation, spec.side):
        raise PermissionDenied(_side_message(action, consultation))
    if consultation.status not in spec.sources:
        raise TransitionConflict(
            consultation,
            _("This consultation is %(status)s; it cannot be %(action)s now.")
            % {"status": consultation.get_status_display(), "action": _action_label(action)},
        )
    now = timezone.now()
    changes: dict[str, Any] = {"status": spec.target, spec.stamp: now, "updated_at": now, **(fields or {})}
    # The optimistic lock: of two readers accepting at once, one UPDATE matches and one does not.
    updated = Consultation.objects.filter(
        pk=consultation.pk, status=consultation.status, version=consultation.version
    ).update(version=F("version") + 1, **changes)
    if not updated:
        consultation.refresh_from_db()
        raise TransitionConflict(
            consultation,
            _("Someone else changed this consultation first: it is now %(status)s.")
            % {"status": consultation.get_status_display()},
        )
    from_status = consultation.status
    for name, value in changes.items():
        setattr(consultation, name, value)
    consultation.version += 1
    ConsultationTransition.objects.create(
        consultation=consultation, from_status=from_status, to_status=spec.target, actor=actor, at=now, note=note
    )
    audit_record(
        action=f"consultation.{action}",
        request=request,
        actor=actor,
        institution=consultation.requesting_institution,
        object_type="consultation",
        object_id=str(consultation.uuid),
        detail={"from": from_status, "to": spec.target, "study": consultation.study.study_instance_uid},
    )
    notify.consultation_changed(consultation)
    return consultation


def _action_label(action: str) -> str:
    return {
        "accept": _("accepted"),
        "start": _("started"),
        "report": _("reported"),
        "close": _("closed"),
        "decline": _("declined"),
        "cancel": _("cancelled"),
    }[action]


def _end_grants(consultation: Consultation, actor: User) -> None:
    """End the consultation's study grants after the grace period (readers may finish up)."""
    grace = timedelta(minutes=settings.CONSULT_GRANT_GRACE_MINUTES)
    at = timezone.now() + grace
    for grant in consultation.grants.select_related("study__institution", "institution"):
        if grant.revoked_at is None:
            imaging_services.study_grant_end(grant=grant, at=at, actor=actor)


def _reader_recipients(consultation: Consultation) -> list[User]:
    """Who on the reading side hears about the consultation: its reader once accepted, else all readers."""
    if consultation.accepted_by_id is not None and is_target_reader(consultation.accepted_by, consultation):
        return [consultation.accepted_by]  # type: ignore[list-item]
    return readers_of(consultation.target_institution)


def consultation_accept(*, consultation: Consultation, actor: User, request: HttpRequest | None = None) -> Consultation:
    with transaction.atomic():
        _transition(
            consultation=consultation, action="accept", actor=actor, fields={"accepted_by": actor}, request=request
        )
        notify.send(
            kind=Notification.Kind.ACCEPTED,
            consultation=consultation,
            actor=actor,
            recipients=[consultation.requested_by],
        )
    return consultation


def consultation_start(*, consultation: Consultation, actor: User, request: HttpRequest | None = None) -> Consultation:
    with transaction.atomic():
        _transition(consultation=consultation, action="start", actor=actor, request=request)
    return consultation


def consultation_close(*, consultation: Consultation, actor: User, request: HttpRequest | None = None) -> Consultation:
    with transaction.atomic():
        _transition(consultation=consultation, action="close", actor=actor, request=request)
        _end_grants(consultation, actor)
    return consultation


def consultation_decline(
    *, consultation: Consultation, actor: User, reason: str, request: HttpRequest | None = None
) -> Consultation:
    reason = reason.strip()
    if not reason:
        raise ValidationError(_("Say why the request is declined; the requester will read it."))
    with transaction.atomic():
        _transition(
            consultation=consultation,
            action="decline",
            actor=actor,
            note=reason,
            fields={"decline_reason": reason},
            request=request,
        )
        _end_grants(consultation, actor)
        notify.send(
            kind=Notification.Kind.DECLINED,
            consultation=consultation,
            actor=actor,
            recipients=[consultation.requested_by],
        )
    return consultation


def consultation_cancel(
    *, consultation: Consultation, actor: User, reason: str = "", request: HttpRequest | None = None
) -> Consultation:
    reason = reason.strip()
    with transaction.atomic():
        recipients = _reader_recipients(consultation)
        _transition(
            consultation=consultation,
            action="cancel",
            actor=actor,
            note=reason,
            fields={"cancel_reason": reason},
            request=request,
        )
        _end_grants(consultation, actor)
        notify.send(kind=Notification.Kind.CANCELLED, consultation=consultation, actor=actor, recipients=recipients)
    return consultation


def consultation_transition(
    *, consultation: Consultation, action: str, actor: User, reason: str = "", request: HttpRequest | None = None
) -> Consultation:
    """Dispatch a user-triggered *action* (the transition URL's one entry point)."""
    if action == "accept":
        return consultation_accept(consultation=consultation, actor=actor, request=request)
    if action == "start":
        return consultation_start(consultation=consultation, actor=actor, request=request)
    if action == "close":
        return consultation_close(consultation=consultation, actor=actor, request=request)
    if action == "decline":
        return consultation_decline(consultation=consultation, actor=actor, reason=reason, request=request)
    if action == "cancel":
        return consultation_cancel(consultation=consultation, actor=actor, reason=reason, request=request)
    if action in ACTIONS:
        # "report" happens by signing the report, never by itself.
        raise TransitionConflict(consultation, _("A consultation is reported by signing its report."))
    raise ValidationError(_("Unknown action “%(action)s”.") % {"action": action})


# --- Creating a consultation ---------------------------------------------------------


def due_at_for(priority: int, start: datetime | None = None) -> datetime:
    hours = settings.CONSULT_DUE_HOURS[Study.Priority(priority).name.lower()]
    return (start or timezone.now()) + timedelta(hours=hours)


def target_institutions(study: Study) -> QuerySet[Institution]:
    """Where *study* may be sent for reading: health centers and institutions that accept requests."""
    return (
        Institution.objects.filter(is_active=True)
        .filter(Q(kind=Institution.Kind.HEALTH_CENTER) | Q(accepts_consultations=True))
        .exclude(pk=study.institution_id)
        .order_by("kind", "name_ko")
    )


def readers_of(institution: Institution) -> list[User]:
    """Active readers of *institution* (active people with an active reader role)."""
    memberships = Membership.objects.filter(
        institution=institution, role=Role.READER, is_active=True, user__is_active=True, institution__is_active=True
    )
    return list(User.objects.filter(pk__in=memberships.values("user_id")).order_by("name", "username"))


def prior_studies(study: Study) -> QuerySet[Study]:
    """Other studies of the same patient at the same institution, which a requester may also share."""
    return (
        Study.objects.filter(institution_id=study.institution_id, patient_id=study.patient_id)
        .exclude(pk=study.pk)
        .order_by("-study_date", "-id")
    )


def consultation_create(
    *,
    actor: User,
    study: Study,
    target: Institution,
    priority: int,
    clinical_question: str,
    clinical_history: str = "",
    named_reader: User | None = None,
    series: Sequence[Series] | None = None,
    related_studies: Sequence[Study] = (),
    request: HttpRequest | None = None,
    send_notifications: bool = True,
) -> Consultation:
    """Ask *target*'s readers to read *study*; *series* defaults to all of the study's."""
    # A member of the owning institution, not someone who merely sees it through a grant.
    if not permissions.can_act_for(actor, study.institution):
        raise PermissionDenied(_("Only members of the institution that owns the study can request a reading."))
    errors: dict[str, str] = {}
    if not target_institutions(study).filter(pk=target.pk).exists():
        errors["target"] = _("%(institution)s does not accept reading requests.") % {"institution": target.display_name}
    if named_reader is not None and named_reader not in readers_of(target):
        errors["named_reader"] = _("%(reader)s is not a reader at %(institution)s.") % {
            "reader": named_reader.get_full_name(),
            "institution": target.display_name,
        }
    if priority not in Study.Priority.values:
        errors["priority"] = _("Choose routine, urgent or emergency.")
    if not clinical_question.strip():
        errors["clinical_question"] = _("Write the clinical question the readers should answer.")
    chosen_series = list(study.series.all()) if series is None else list(series)
    if any(s.study_id != study.pk for s in chosen_series):
        errors["series"] = _("Attach only series of this study.")
    elif not chosen_series:
        errors["series"] = _("Attach at least one series.")
    allowed_priors = set(prior_studies(study).values_list("pk", flat=True))
    if any(s.pk not in allowed_priors for s in related_studies):
        errors["related_studies"] = _("Only other studies of the same patient at your institution can be shared.")
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        consultation = Consultation(
            study=study,
            requesting_institution=study.institution,
            requested_by=actor,
            target_institution=target,
            named_reader=named_reader,
            priority=priority,
            clinical_question=clinical_question.strip(),
            clinical_history=clinical_history.strip(),
            due_at=due_at_for(priority),
        )
        consultation.full_clean()
        consultation.save()
        consultation.series.set(chosen_series)
        consultation.related_studies.set(related_studies)
        reason = f"consultation {consultation.uuid}"
        grants = [
            imaging_services.study_grant(study=shared, institution=target, reason=reason, granted_by=actor)
            for shared in [study, *related_studies]
        ]
        consultation.grants.set(grants)
        if priority > study.priority:
            # Emergency readings' previews jump the queue.
            imaging_services.study_set_priority(study=study, priority=priority)
        ConsultationTransition.objects.create(
            consultation=consultation,
            from_status="",
            to_status=Status.REQUESTED,
            actor=actor,
            at=consultation.created_at,
        )
        audit_record(
            action="consultation.create",
            request=request,
            actor=actor,
            institution=study.institution,
            object_type="consultation",
            object_id=str(consultation.uuid),
            detail={
                "study": study.study_instance_uid,
                "to": target.code,
                "priority": Study.Priority(priority).name.lower(),
                "related": [s.study_instance_uid for s in related_studies],
            },
        )
        recipients = readers_of(target)
        if named_reader is not None and not consultation.is_emergency:
            # The named reader alone; an emergency reaches every reader on duty.
            recipients = [named_reader]
        notify.send(
            kind=Notification.Kind.NEW,
            consultation=consultation,
            actor=actor,
            recipients=recipients,
            email=send_notifications,
        )
        notify.consultation_changed(consultation)
    return consultation


# --- Comments and key images ------------------------------------------------------


def consultation_studies(consultation: Consultation) -> list[int]:
    """Primary keys of the studies shared in *consultation*."""
    return [consultation.study_id, *consultation.related_studies.values_list("pk", flat=True)]


def comment_add(
    *,
    consultation: Consultation,
    actor: User,
    body: str,
    key_images: Iterable[tuple[Instance, int]] = (),
    request: HttpRequest | None = None,
) -> Comment:
    if not (is_requester(actor, consultation) or is_target_reader(actor, consultation)):
        raise PermissionDenied(_("You are not part of this consultation."))
    if not consultation.is_open:
        raise TransitionConflict(
            consultation,
            _("This consultation is %(status)s; comments are closed.") % {"status": consultation.get_status_display()},
        )
    body = body.strip()
    images = list(key_images)
    if not body and not images:
        raise ValidationError(_("Write a comment or attach a key image."))
    shared = set(consultation_studies(consultation))
    for instance, frame in images:
        if instance.study_id not in shared:
            raise ValidationError(_("A key image must be an image of the consultation's studies."))
        frames = min(max(instance.number_of_frames, 1), MAX_PREVIEW_FRAMES)
        if not 0 <= frame < frames:
            raise ValidationError(
                _("Frame %(frame)s does not exist; this image has frames 1 to %(frames)s.")
                % {"frame": frame + 1, "frames": frames}
            )
    with transaction.atomic():
        comment = Comment.objects.create(consultation=consultation, author=actor, body=body)
        KeyImage.objects.bulk_create([KeyImage(comment=comment, instance=i, frame=f) for i, f in images])
        audit_record(
            action="consultation.comment",
            request=request,
            actor=actor,
            institution=consultation.requesting_institution,
            object_type="consultation",
            object_id=str(consultation.uuid),
            detail={"comment": comment.pk, "key_images": [[i.sop_instance_uid, f] for i, f in images]},
        )
        if is_target_reader(actor, consultation):
            recipients = [consultation.requested_by]
        else:
            recipients = _reader_recipients(consultation)
        notify.send(kind=Notification.Kind.COMMENTED, consultation=consultation, actor=actor, recipients=recipients)
    return comment


# --- Reports -------------------------------------------------------------------


def report_kind_for(study: Study) -> str:
    """The template a study most likely wants, from its modalities and body part."""
    modalities = set(study.modality_list)
    body_parts = {part.upper() for part in study.series.values_list("body_part", flat=True) if part}
    if "PX" in modalities:
        return Report.Kind.DENTAL_PANORAMIC
    if "CT" in modalities:
        return Report.Kind.CT
    if "MR" in modalities:
        return Report.Kind.MR
    if modalities & {"CR", "DX"} and "CHEST" in body_parts:
        return Report.Kind.CHEST_RADIOGRAPH
    return Report.Kind.GENERAL


def report_template(kind: str) -> tuple[str, str]:
    """The (findings, impression) a new report of *kind* starts from."""
    lines = {
        Report.Kind.CHEST_RADIOGRAPH: [
            _("Lungs:"),
            _("Pleura:"),
            _("Heart and mediastinum:"),
            _("Bones and soft tissues:"),
        ],
        Report.Kind.DENTAL_PANORAMIC: [
            _("Teeth:"),
            _("Periodontal bone:"),
            _("Maxilla and mandible:"),
            _("Temporomandibular joints:"),
            _("Maxillary sinuses:"),
        ],
        Report.Kind.CT: [_("Technique:"), _("Comparison:"), _("Findings:")],
        Report.Kind.MR: [_("Technique:"), _("Sequences:"), _("Comparison:"), _("Findings:")],
        Report.Kind.GENERAL: [],
    }[Report.Kind(kind)]
    return "\n".join(f"{line} " for line in lines), ""


def _require_reader(consultation: Consultation, actor: User) -> None:
    if not is_target_reader(actor, consultation):
        raise PermissionDenied(
            _("Only a reader at %(institution)s can write the report.")
            % {"institution": consultation.target_institution.display_name}
        )


def report_draft(*, consultation: Consultation) -> Report | None:
    return consultation.reports.filter(status=Report.Status.DRAFT).first()


def report_save_draft(
    *,
    consultation: Consultation,
    actor: User,
    kind: str | None = None,
    findings: str | None = None,
    impression: str | None = None,
    addendum: str | None = None,
    request: HttpRequest | None = None,
) -> Report:
    """Create or update the draft (autosave calls this every few seconds while typing)."""
    _require_reader(consultation, actor)
    if kind is not None and kind not in Report.Kind.values:
        raise ValidationError(_("Unknown report template."))
    with transaction.atomic():
        if consultation.status == Status.ACCEPTED:
            consultation_start(consultation=consultation, actor=actor, request=request)
        draft = report_draft(consultation=consultation)
        # The first version while reading; after that only an addendum draft already started.
        writable = consultation.status == Status.READING or (
            consultation.status == Status.REPORTED and draft is not None
        )
        if not writable:
            raise TransitionConflict(
                consultation,
                _("This consultation is %(status)s; its report cannot be written now.")
                % {"status": consultation.get_status_display()},
            )
        if draft is None:
            draft = _new_draft(consultation, actor, kind)
        if kind is not None:
            draft.kind = kind
        if findings is not None:
            draft.findings = findings
        if impression is not None:
            draft.impression = impression
        if addendum is not None and draft.is_addendum:
            draft.addendum = addendum
        draft.full_clean()
        draft.save()
    return draft


def report_unsaved_draft(*, consultation: Consultation, actor: User, kind: str | None = None) -> Report:
    """What a new report starts as (the template of the study's kind), not saved yet."""
    latest = consultation.reports.aggregate(latest=Max("version"))["latest"] or 0
    kind = kind or report_kind_for(consultation.study)
    findings, impression = report_template(kind)
    return Report(
        consultation=consultation, version=latest + 1, kind=kind, findings=findings, impression=impression, author=actor
    )


def _new_draft(consultation: Consultation, actor: User, kind: str | None) -> Report:
    draft = report_unsaved_draft(consultation=consultation, actor=actor, kind=kind)
    draft.save()
    return draft


def report_start_addendum(*, consultation: Consultation, actor: User, request: HttpRequest | None = None) -> Report:
    """A new draft version after the signed one, starting from its text."""
    _require_reader(consultation, actor)
    if consultation.status != Status.REPORTED:
        raise TransitionConflict(
            consultation,
            _("Addenda follow a signed report; this consultation is %(status)s.")
            % {"status": consultation.get_status_display()},
        )
    with transaction.atomic():
        existing = report_draft(consultation=consultation)
        if existing is not None:
            return existing
        final = consultation.final_report()
        assert final is not None
        return Report.objects.create(
            consultation=consultation,
            version=final.version + 1,
            kind=final.kind,
            findings=final.findings,
            impression=final.impression,
            author=actor,
        )


def report_sign(*, consultation: Consultation, actor: User, request: HttpRequest | None = None) -> Report:
    """Sign and lock the draft; the first signed version makes the consultation reported."""
    _require_reader(consultation, actor)
    with transaction.atomic():
        draft = report_draft(consultation=consultation)
        if draft is None:
            raise TransitionConflict(consultation, _("There is no draft report to sign."))
        if not (draft.findings.strip() or draft.impression.strip()):
            raise ValidationError(_("Write the findings or the impression before signing."))
        if draft.is_addendum and not draft.addendum.strip():
            raise ValidationError(_("Say what the addendum adds or corrects."))
        if not draft.is_addendum and consultation.status != Status.READING:
            raise TransitionConflict(
                consultation,
                _("This consultation is %(status)s; its report cannot be signed now.")
                % {"status": consultation.get_status_display()},
            )
        previous = draft.previous_final()
        draft.signed_by = actor
        draft.signed_at = timezone.now()
        draft.content_hash = draft.compute_hash(previous.content_hash if previous else "")
        # Conditional on still being a draft: a report is signed once.
        locked = Report.objects.filter(pk=draft.pk, status=Report.Status.DRAFT).update(
            status=Report.Status.FINAL,
            signed_by=actor,
            signed_at=draft.signed_at,
            content_hash=draft.content_hash,
            updated_at=draft.signed_at,
        )
        if not locked:
            raise TransitionConflict(consultation, _("This report was signed already."))
        draft.status = Report.Status.FINAL
        draft._locked = True
        if not draft.is_addendum:
            _transition(consultation=consultation, action="report", actor=actor, request=request)
        else:
            notify.consultation_changed(consultation)
        audit_record(
            action="report.sign",
            request=request,
            actor=actor,
            institution=consultation.requesting_institution,
            object_type="consultation",
            object_id=str(consultation.uuid),
            detail={"version": draft.version, "sha256": draft.content_hash},
        )
        notify.send(
            kind=Notification.Kind.REPORTED,
            consultation=consultation,
            actor=actor,
            recipients=[consultation.requested_by],
        )
    return draft
