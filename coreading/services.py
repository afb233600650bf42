"""Every database read and write of co-reading: rooms, members, annotations, chat.

Synchronous functions; the consumer calls them through ``database_sync_to_async``
and only for what is persisted (joining, annotations, chat, the periodic access
re-check) — never for viewport or pointer messages.

Who may be in a room is decided here, on top of the one study check
(``imaging.access``) and the one consultation check (``consult.access``):

* a consultation's room: whoever may see the consultation and its study, while
  the consultation is open;
* an ad-hoc room: its owner and the people invited to it (not removed), while
  each may see the study.

Writes record audit events; the live side (group messages) happens after commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from clinicnet.audit.services import audit_record
from clinicnet.events import push_to_users
from consult.access import access_consultation, visible_consultations
from consult.models import Consultation
from coreading.models import PALETTE, Annotation, ChatMessage, Participant, Room
from imaging.access import can_see_study, visible_studies
from imaging.models import Study
from institutions import permissions
from institutions.models import Institution, Membership, User


class RoomClosed(Exception):
    """The room exists and the user may see it, but it is closed."""


def room_group(room_uuid: uuid.UUID | str) -> str:
    return f"coreading.{room_uuid}"


# --- Who may be in a room --------------------------------------------------------------


def may_enter(user: User | object, room: Room) -> bool:
    """May *user* be in *room* now (ignoring whether it is closed)?"""
    if not getattr(user, "is_authenticated", False) or not permissions.has_any_access(user):
        return False
    if not can_see_study(user, room.study):
        return False
    if room.consultation_id is not None:
        return visible_consultations(user).filter(pk=room.consultation_id).exists()
    user_id = getattr(user, "pk", None)
    if not isinstance(user_id, int):
        return False
    if room.created_by_id == user_id:
        return True
    return room.participants.filter(user_id=user_id, removed_at__isnull=True).exists()


def _room_by_id(room_id: uuid.UUID | str) -> Room | None:
    try:
        key = uuid.UUID(str(room_id))
    except ValueError:
        return None
    return Room.objects.select_related("study", "consultation", "created_by").filter(uuid=key).first()


def access_room(user: User | object, room_id: uuid.UUID | str) -> Room:
    """The room *user* may be in, or Http404 (unknown and forbidden alike). Closed rooms too."""
    room = _room_by_id(room_id)
    if room is None or not may_enter(user, room):
        raise Http404("No such room")
    return room


def still_allowed(user_id: int, room_id: int) -> bool:
    """The consumer's re-check: the user (reloaded) may still be in the open room."""
    user = User.objects.filter(pk=user_id).first()
    room = Room.objects.select_related("study", "consultation").filter(pk=room_id).first()
    if user is None or room is None or not room.is_open:
        return False
    if room.consultation is not None and not room.consultation.is_open:
        return False
    return may_enter(user, room)


def rooms_for_study(user: User, study_uid: str) -> list[Room]:
    """The open rooms on this study *user* may join, newest first."""
    studies = visible_studies(user).filter(study_instance_uid=study_uid)
    consultations = visible_consultations(user).filter(status__in=Consultation.OPEN_STATUSES)
    rooms = (
        Room.objects.filter(study__in=studies, closed_at__isnull=True)
        .filter(
            Q(consultation__in=consultations)
            | Q(consultation__isnull=True, created_by=user)
            | Q(consultation__isnull=True, participants__user=user, participants__removed_at__isnull=True)
        )
        .select_related("study", "consultation", "created_by")
        .distinct()
        .order_by("-created_at")
    )
    return list(rooms)


def openable_consultations(user: User, study: Study) -> list[Consultation]:
    """Open consultations on *study* (which *user* may see) whose room nobody opened yet, newest first.

    *user* may open each of them (``consultation_room(create=True)``): the viewer's
    "Read together" and the study page offer them beside the open rooms.
    """
    if not can_see_study(user, study):
        return []
    return list(
        visible_consultations(user)
        .filter(study=study, status__in=Consultation.OPEN_STATUSES, coreading_room__isnull=True)
        .select_related("requesting_institution", "target_institution")
        .order_by("-created_at", "-id")
    )


# --- Opening and closing rooms ------------------------------------------------------------


def _free_colour(room: Room) -> str:
    used = list(room.participants.values_list("colour", flat=True))
    for colour in PALETTE:
        if colour not in used:
            return colour
    return PALETTE[len(used) % len(PALETTE)]


def _participant(room: Room, user: User, invited_by: User | None = None) -> Participant:
    participant = Participant.objects.filter(room=room, user=user).first()
    if participant is None:
        try:
            with transaction.atomic():
                participant = Participant.objects.create(
                    room=room, user=user, colour=_free_colour(room), invited_by=invited_by
                )
        except IntegrityError:  # joined twice at once
            participant = Participant.objects.get(room=room, user=user)
    return participant


def room_create(*, actor: User, study: Study, title: str = "", request: HttpRequest | None = None) -> Room:
    """Open an ad-hoc room on *study*; *actor* owns it."""
    if not can_see_study(actor, study):
        raise Http404("No such study")
    title = title.strip()
    if len(title) > 200:
        raise ValidationError(_("The title is longer than 200 characters."))
    with transaction.atomic():
        room = Room.objects.create(study=study, title=title, created_by=actor)
        _participant(room, actor)
        audit_record(
            action="coreading.room_create",
            request=request,
            actor=actor,
            institution=study.institution,
            object_type="coreading.room",
            object_id=str(room.uuid),
            detail={"study": study.study_instance_uid},
        )
    return room


def consultation_room(
    *, actor: User, consultation_uuid: uuid.UUID | str, create: bool, request: HttpRequest | None = None
) -> tuple[Room, bool]:
    """The consultation's room, opened when *create* (and the consultation is open): (room, created)."""
    consultation = access_consultation(actor, consultation_uuid)
    if not can_see_study(actor, consultation.study):
        raise Http404("No such consultation")
    room = Room.objects.select_related("study", "consultation", "created_by").filter(consultation=consultation).first()
    if room is not None:
        return room, False
    if not create:
        raise Http404("No room yet")
    if not consultation.is_open:
        raise RoomClosed(
            _("This consultation is %(status)s; its co-reading room cannot be opened.")
            % {"status": consultation.get_status_display()}
        )
    try:
        with transaction.atomic():
            room = Room.objects.create(study=consultation.study, consultation=consultation, created_by=actor)
            audit_record(
                action="coreading.room_create",
                request=request,
                actor=actor,
                institution=consultation.requesting_institution,
                object_type="coreading.room",
                object_id=str(room.uuid),
                detail={"study": consultation.study.study_instance_uid, "consultation": str(consultation.uuid)},
            )
    except IntegrityError:  # two people opened it at once: one room
        return Room.objects.select_related("study", "consultation", "created_by").get(consultation=consultation), False
    return room, True


def _send_to_room(room: Room, message: dict[str, Any]) -> None:
    group = room_group(room.uuid)

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, message)

    transaction.on_commit(send)


def room_close(*, room: Room, actor: User | None, reason: str, request: HttpRequest | None = None) -> None:
    """Close *room*: everyone in it gets room.closed and is disconnected (4410)."""
    if room.closed_at is not None:
        return
    with transaction.atomic():
        Room.objects.filter(pk=room.pk, closed_at__isnull=True).update(closed_at=timezone.now())
        room.closed_at = timezone.now()
        audit_record(
            action="coreading.room_close",
            request=request,
            actor=actor,
            institution=room.study.institution,
            object_type="coreading.room",
            object_id=str(room.uuid),
            detail={"reason": reason},
        )
        _send_to_room(room, {"type": "coreading.closed", "reason": reason})


def room_close_by_owner(*, room: Room, actor: User, request: HttpRequest | None = None) -> None:
    if room.consultation_id is not None:
        raise ValidationError(_("A consultation's room closes with the consultation."))
    if room.created_by_id != actor.pk:
        raise PermissionDenied(_("Only the person who opened the room can close it."))
    room_close(room=room, actor=actor, reason="owner", request=request)


def consultation_ended(consultation: Consultation) -> None:
    """Close the consultation's room (called when it is closed, declined or cancelled)."""
    room = Room.objects.select_related("study__institution").filter(consultation=consultation).first()
    if room is not None:
        room_close(room=room, actor=None, reason="consultation")


# --- Members -------------------------------------------------------------------------------


def _find_user(text: str) -> User | None:
    text = text.strip()
    if not text:
        return None
    return User.objects.filter(Q(username=text) | Q(email__iexact=text), is_active=True).first()


def participant_invite(*, room: Room, actor: User, who: str, request: HttpRequest | None = None) -> Participant:
    """Invite the user named *who* (username or e-mail) to the ad-hoc *room*."""
    if room.consultation_id is not None:
        raise ValidationError(_("Who is in a consultation's room follows the consultation; invite no one."))
    if room.created_by_id != actor.pk:
        raise PermissionDenied(_("Only the person who opened the room can invite people."))
    if not room.is_open:
        raise RoomClosed(_("This room is closed."))
    user = _find_user(who)
    # The same answer for unknown people and people who may not see the study: it tells no one who exists.
    if user is None or not can_see_study(user, room.study):
        raise ValidationError(_("No one with that username or e-mail address can see this study."))
    with transaction.atomic():
        participant = _participant(room, user, invited_by=actor)
        if participant.removed_at is not None:
            participant.removed_at = None
            participant.invited_by = actor
            participant.save(update_fields=["removed_at", "invited_by"])
        audit_record(
            action="coreading.invite",
            request=request,
            actor=actor,
            institution=room.study.institution,
            object_type="coreading.room",
            object_id=str(room.uuid),
            detail={"user": user.username},
        )
        if user.pk != actor.pk:
            _notify_invited(room, actor, user)
    return participant


def _notify_invited(room: Room, actor: User, user: User) -> None:
    from django.utils import translation

    with translation.override(user.language or settings.LANGUAGE_CODE):
        modality = "/".join(room.study.modality_list) or _("imaging")
        text = _("%(actor)s invited you to read a %(modality)s study together") % {
            "actor": actor.get_full_name(),
            "modality": modality,
        }
    push_to_users(
        [user.pk],
        {
            "type": "notification",
            "op": "created",
            "kind": "coreading.invited",
            "room": str(room.uuid),
            "study": room.study.study_instance_uid,
            "url": reverse("coreading-room-open", args=[room.uuid]),
            "text": text,
            "emergency": False,
        },
    )


def participant_remove(*, room: Room, actor: User, user_id: int, request: HttpRequest | None = None) -> None:
    """Remove someone from an ad-hoc room (its owner), or leave it (oneself); their sockets close."""
    if room.consultation_id is not None:
        raise ValidationError(_("Who is in a consultation's room follows the consultation."))
    if actor.pk != room.created_by_id and actor.pk != user_id:
        raise PermissionDenied(_("Only the person who opened the room can remove people."))
    if user_id == room.created_by_id:
        raise ValidationError(_("The person who opened the room cannot be removed; close the room instead."))
    participant = Participant.objects.filter(room=room, user_id=user_id, removed_at__isnull=True).first()
    if participant is None:
        raise Http404("No such participant")
    with transaction.atomic():
        participant.removed_at = timezone.now()
        participant.save(update_fields=["removed_at"])
        audit_record(
            action="coreading.remove",
            request=request,
            actor=actor,
            institution=room.study.institution,
            object_type="coreading.room",
            object_id=str(room.uuid),
            detail={"user": participant.user.username},
        )
        _send_to_room(room, {"type": "coreading.removed", "user": user_id})


def members(room: Room) -> QuerySet[Participant]:
    return room.participants.filter(removed_at__isnull=True).select_related("user")


# --- What a connection needs -------------------------------------------------------------


def _institution_of(user: User, room: Room) -> Institution | None:
    """The institution *user* is in the room for: the study's, the consultation's sides, else any."""
    preferred = [room.study.institution_id]
    if room.consultation is not None:
        preferred = [room.consultation.requesting_institution_id, room.consultation.target_institution_id]
    memberships = list(permissions.active_memberships(user).select_related("institution"))
    for institution_id in preferred:
        for membership in memberships:
            if membership.institution_id == institution_id:
                return membership.institution
    return memberships[0].institution if memberships else None


def _role_of(user: User, institution: Institution | None) -> str:
    if institution is None:
        return ""
    roles = list(
        Membership.objects.filter(user=user, institution=institution, is_active=True).values_list("role", flat=True)
    )
    # The role that says most about how they read: reader, physician, staff, admin.
    for role in ("reader", "physician", "clinic_staff", "institution_admin"):
        if role in roles:
            return role
    return roles[0] if roles else ""


@dataclass(frozen=True)
class Entry:
    """What a connection knows about its room and its user after the check at connect."""

    room_pk: int
    room_id: str
    study_uid: str
    consultation: str | None
    kind: str
    title: str
    user_id: int
    name: str
    colour: str
    institution: dict[str, str] | None
    role: str
    language: str


def _audit_join(user: User, room: Room, request_address: str | None) -> None:
    """Record that *user* entered *room*: one row per person and room every ``COREADING_JOIN_AUDIT_SECONDS``.

    A browser reconnects after every network hiccup and server restart, and each tab is a
    connection: one row per window says who was in which room, without a database write
    on every connect. When the cache cannot answer, every entry is recorded.
    """
    window = settings.COREADING_JOIN_AUDIT_SECONDS
    if window > 0:
        try:
            first = cache.add(f"coreading:audit:join:{user.pk}:{room.uuid}", 1, timeout=window)
        except Exception:  # noqa: BLE001  (an unreachable cache must not cost an audit row)
            first = True
        if not first:
            return
    audit_record(
        action="coreading.join",
        actor=user,
        institution=room.study.institution,
        object_type="coreading.room",
        object_id=str(room.uuid),
        address=request_address,
        detail={"study": room.study.study_instance_uid, **({"window": window} if window > 0 else {})},
    )


def enter(user: User | object, room_id: str, *, request_address: str | None = None) -> Entry:
    """The check at connect: Http404 when *user* may not be in the room, RoomClosed when it is closed."""
    room = access_room(user, room_id)
    assert isinstance(user, User)
    if not room.is_open or (room.consultation is not None and not room.consultation.is_open):
        raise RoomClosed(_("This room is closed."))
    participant = _participant(room, user)  # a write only the first time someone enters a consultation's room
    institution = _institution_of(user, room)
    _audit_join(user, room, request_address)
    return Entry(
        room_pk=room.pk,
        room_id=str(room.uuid),
        study_uid=room.study.study_instance_uid,
        consultation=str(room.consultation.uuid) if room.consultation else None,
        kind=room.kind,
        title=room.title,
        user_id=user.pk,
        name=user.get_full_name(),
        colour=participant.colour,
        institution=(
            {"code": institution.code, "name": institution.name_ko, "name_en": institution.name_en}
            if institution
            else None
        ),
        role=_role_of(user, institution),
        language=user.language or settings.LANGUAGE_CODE,
    )


def max_seq(room_pk: int) -> int:
    """The highest sequence number stored with the room's annotations and chat (seeds the counter)."""
    annotations = Annotation.objects.filter(room_id=room_pk).aggregate(top=Max("seq"))["top"] or 0
    chat = ChatMessage.objects.filter(room_id=room_pk).aggregate(top=Max("seq"))["top"] or 0
    return max(annotations, chat)


def _person(user_id: int, name: str) -> dict[str, Any]:
    return {"user": user_id, "name": name}


def annotation_json(annotation: Annotation) -> dict[str, Any]:
    return {
        "id": str(annotation.uuid),
        "kind": annotation.kind,
        "series": annotation.series_uid,
        "instance": annotation.instance_uid,
        "frame": annotation.frame,
        "points": annotation.points,
        "text": annotation.text,
        "version": annotation.version,
        "author": _person(annotation.author_id, annotation.author.get_full_name()),
        "colour": annotation.colour,
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
        "updated_by": _person(annotation.updated_by_id, annotation.updated_by.get_full_name()),
    }


def chat_json(message: ChatMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "text": message.text,
        "author": _person(message.author_id, message.author.get_full_name()),
        "colour": message.colour,
        "at": message.created_at.isoformat(),
    }


def snapshot(room_pk: int) -> dict[str, Any]:
    """The persisted part of a snapshot: annotations, recent chat, the saved viewport."""
    annotations = (
        Annotation.objects.filter(room_id=room_pk, deleted_at__isnull=True)
        .select_related("author", "updated_by")
        .order_by("created_at", "id")
    )
    chat = list(
        ChatMessage.objects.filter(room_id=room_pk)
        .select_related("author")
        .order_by("-id")[: settings.COREADING_CHAT_HISTORY]
    )
    viewport = Room.objects.filter(pk=room_pk).values_list("viewport", flat=True).first()
    return {
        "annotations": [annotation_json(a) for a in annotations],
        "chat": [chat_json(m) for m in reversed(chat)],
        "viewport": viewport,
    }


def save_viewport(room_pk: int, viewport: dict[str, Any]) -> None:
    Room.objects.filter(pk=room_pk).update(viewport=viewport)


def _audit(entry: Entry, action: str, detail: dict[str, Any]) -> None:
    room = Room.objects.select_related("study__institution").get(pk=entry.room_pk)
    audit_record(
        action=action,
        actor=User.objects.get(pk=entry.user_id),
        institution=room.study.institution,
        object_type="coreading.room",
        object_id=entry.room_id,
        detail=detail,
    )


# --- Chat ------------------------------------------------------------------------------------


def chat_existing(entry: Entry, client_id: str) -> ChatMessage | None:
    return ChatMessage.objects.filter(room_id=entry.room_pk, author_id=entry.user_id, client_id=client_id).first()


def chat_add(entry: Entry, *, client_id: str, text: str, seq: int) -> dict[str, Any] | None:
    """Store a chat message numbered *seq*; None when this client id was stored already."""
    try:
        with transaction.atomic():
            message = ChatMessage.objects.create(
                room_id=entry.room_pk,
                author_id=entry.user_id,
                colour=entry.colour,
                text=text,
                client_id=client_id,
                seq=seq,
            )
            _audit(entry, "coreading.chat", {"message": message.pk})
    except IntegrityError:
        return None
    message = ChatMessage.objects.select_related("author").get(pk=message.pk)
    return chat_json(message)


# --- Annotations -------------------------------------------------------------------------------


def annotation_existing(entry: Entry, client_id: str) -> Annotation | None:
    return Annotation.objects.filter(room_id=entry.room_pk, author_id=entry.user_id, client_id=client_id).first()


def annotation_create(entry: Entry, *, client_id: str, data: dict[str, Any], seq: int) -> dict[str, Any] | None:
    """Store an annotation numbered *seq*; None when this client id was stored already."""
    try:
        with transaction.atomic():
            annotation = Annotation.objects.create(
                room_id=entry.room_pk,
                author_id=entry.user_id,
                updated_by_id=entry.user_id,
                colour=entry.colour,
                kind=data["kind"],
                series_uid=data["series"],
                instance_uid=data["instance"],
                frame=data["frame"],
                points=data["points"],
                text=data["text"],
                client_id=client_id,
                seq=seq,
            )
            _audit(entry, "coreading.annotation_create", {"annotation": str(annotation.uuid), "kind": annotation.kind})
    except IntegrityError:
        return None
    return annotation_json(Annotation.objects.select_related("author", "updated_by").get(pk=annotation.pk))


def annotation_get(entry: Entry, annotation_id: str) -> Annotation | None:
    return (
        Annotation.objects.filter(room_id=entry.room_pk, uuid=annotation_id, deleted_at__isnull=True)
        .select_related("author", "updated_by")
        .first()
    )


def annotation_update(
    entry: Entry, *, annotation_id: str, version: int, changes: dict[str, Any], seq: int
) -> tuple[str, dict[str, Any] | None]:
    """Apply *changes* if the annotation is still at *version*: ("ok" | "conflict" | "not_found", annotation)."""
    with transaction.atomic():
        updated = Annotation.objects.filter(
            room_id=entry.room_pk, uuid=annotation_id, deleted_at__isnull=True, version=version
        ).update(**changes, version=version + 1, seq=seq, updated_by_id=entry.user_id, updated_at=timezone.now())
        annotation = annotation_get(entry, annotation_id)
        if annotation is None:
            return "not_found", None
        if not updated:
            return "conflict", annotation_json(annotation)
        _audit(entry, "coreading.annotation_update", {"annotation": annotation_id, "version": version + 1})
    return "ok", annotation_json(annotation)


def annotation_delete(entry: Entry, *, annotation_id: str, seq: int) -> int | None:
    """Delete (keeping the row for the record); the last version, or None when not found."""
    with transaction.atomic():
        annotation = annotation_get(entry, annotation_id)
        if annotation is None:
            return None
        Annotation.objects.filter(pk=annotation.pk).update(
            deleted_at=timezone.now(), seq=seq, version=annotation.version + 1, updated_by_id=entry.user_id
        )
        _audit(entry, "coreading.annotation_delete", {"annotation": annotation_id})
    return annotation.version + 1
