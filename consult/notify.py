"""Telling people about consultations: Notification rows, live events, e-mail.

Live events go through ``clinicnet.events.push_to_users`` (after commit) to
the recipients' open pages; ``clinicnet/static/clinicnet/events.js`` turns
them into ``clinicnet:event`` DOM events. Kinds sent from here:

``{"type": "notification", "op": "created", "id", "kind", "consultation",
"url", "text", "emergency", "unread"}``
    to each recipient: a new notification (``unread`` is their new count).
``{"type": "notification", "op": "read", "unread"}``
    to the reader of notifications, so their other pages update the count.
``{"type": "consultation", "op": "changed", "consultation", "status",
"version", "priority", "emergency"}``
    to everyone who may see the consultation, so worklists refresh.

Texts carry no patient data (e-mail is not a safe channel for it): the
institution, the modality and the priority, and a link to sign in and look.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from clinicnet.events import push_to_users
from consult.models import Consultation, Notification
from institutions.models import Membership, Role

if TYPE_CHECKING:
    from institutions.models import User


def participants(consultation: Consultation) -> list[int]:
    """Ids of everyone who may see *consultation* right now."""
    memberships = Membership.objects.filter(
        Q(institution_id=consultation.requesting_institution_id)
        | Q(institution_id=consultation.target_institution_id, role=Role.READER),
        is_active=True,
        user__is_active=True,
        institution__is_active=True,
    )
    return sorted(set(memberships.values_list("user_id", flat=True)))


def consultation_changed(consultation: Consultation) -> None:
    push_to_users(
        participants(consultation),
        {
            "type": "consultation",
            "op": "changed",
            "consultation": str(consultation.uuid),
            "status": consultation.status,
            "version": consultation.version,
            "priority": consultation.priority,
            "emergency": consultation.is_emergency,
        },
    )


def _priority_label(consultation: Consultation) -> str:
    return {
        Consultation.Priority.ROUTINE: _("Routine"),
        Consultation.Priority.URGENT: _("Urgent"),
        Consultation.Priority.EMERGENCY: _("EMERGENCY"),
    }[Consultation.Priority(consultation.priority)]


def notification_text(notification: Notification) -> str:
    """One line, in the active language."""
    consultation = notification.consultation
    actor = notification.actor.get_full_name() if notification.actor else ""
    values = {
        "priority": _priority_label(consultation),
        "modality": "/".join(consultation.study.modality_list) or _("imaging"),
        "requester": consultation.requesting_institution.display_name,
        "target": consultation.target_institution.display_name,
        "actor": actor,
    }
    texts = {
        Notification.Kind.NEW: _("%(priority)s %(modality)s reading request from %(requester)s"),
        Notification.Kind.ACCEPTED: _("%(actor)s (%(target)s) accepted your %(modality)s reading request"),
        Notification.Kind.DECLINED: _("%(target)s declined your %(modality)s reading request"),
        Notification.Kind.CANCELLED: _("%(requester)s cancelled a %(modality)s reading request"),
        Notification.Kind.COMMENTED: _("%(actor)s commented on a %(modality)s reading request"),
        Notification.Kind.REPORTED: _("The report of your %(modality)s reading request is ready (%(actor)s)"),
    }
    return texts[Notification.Kind(notification.kind)] % values


def notification_url(notification: Notification) -> str:
    return reverse("consultation-detail", args=[notification.consultation.uuid])


def unread_count(user: User | object) -> int:
    user_id = getattr(user, "pk", None)
    if not getattr(user, "is_authenticated", False) or not isinstance(user_id, int):
        return 0
    return Notification.objects.filter(user_id=user_id).unread().count()


def _event(notification: Notification, unread: int) -> dict[str, Any]:
    return {
        "type": "notification",
        "op": "created",
        "id": notification.pk,
        "kind": notification.kind,
        "consultation": str(notification.consultation.uuid),
        "url": notification_url(notification),
        "text": notification_text(notification),
        "emergency": notification.is_emergency,
        "unread": unread,
    }


def send(
    *,
    kind: str,
    consultation: Consultation,
    actor: User | None,
    recipients: Iterable[User | None],
    email: bool = True,
) -> list[Notification]:
    """Notify *recipients* (never the actor) in their own language: a row, a live event, an e-mail."""
    people = {user.pk: user for user in recipients if user is not None and user.is_active}
    if actor is not None:
        people.pop(actor.pk, None)
    notifications = [
        Notification.objects.create(
            user=user, kind=kind, consultation=consultation, actor=actor, is_emergency=consultation.is_emergency
        )
        for user in people.values()
    ]
    for notification in notifications:
        user = people[notification.user_id]
        with translation.override(user.language or settings.LANGUAGE_CODE):
            push_to_users([user.pk], _event(notification, unread_count(user)))
    if email and notifications and settings.CONSULT_EMAIL_NOTIFICATIONS:
        from clinicnet.tasks import enqueue
        from consult.tasks import send_notification_emails

        enqueue(send_notification_emails, [n.pk for n in notifications])
    return notifications


def mark_read(*, user: User, notifications: Iterable[Notification] | None = None) -> int:
    """Mark *notifications* (all of the user's when None) read; tell the user's other pages."""
    from django.utils import timezone

    queryset = Notification.objects.filter(user=user).unread()
    if notifications is not None:
        queryset = queryset.filter(pk__in=[n.pk for n in notifications])
    changed = queryset.update(read_at=timezone.now())
    if changed:
        push_to_users([user.pk], {"type": "notification", "op": "read", "unread": unread_count(user)})
    return changed


def email_message(notification: Notification) -> tuple[str, str]:
    """(subject, body) of the e-mail for *notification*, in the active language."""
    text = notification_text(notification)
    subject = f"[ClinicNet] {text}"
    link = f"{settings.SITE_URL}{notification_url(notification)}"
    body = "\n\n".join(
        [
            text,
            _("Sign in to ClinicNet to see it: %(link)s") % {"link": link},
            _("This message has no patient data; the details are in ClinicNet."),
        ]
    )
    return subject, body
