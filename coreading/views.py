"""The HTTP side of co-reading: JSON for the viewer (session cookie, CSRF), and a link for notifications.

Rooms are found through ``coreading.services.access_room`` (404 for unknown
and forbidden alike), studies through ``imaging.access``. Bad input answers
400, not possible now 409, with ``{"error": "<message for a person>"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consult.access import access_consultation
from consult.models import Consultation
from coreading import services
from coreading.models import Participant, Room
from imaging.access import access_study
from imaging.models import Study
from imaging.panels import Panel
from institutions.models import User

View = Callable[..., HttpResponse]


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def json_api(view: View) -> View:
    """Signed-in users only (401 otherwise); service exceptions become 400/403/404/409 JSON."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return _error(401, _("Sign in to use co-reading."))
        try:
            response = view(request, *args, **kwargs)
        except Http404:
            return _error(404, _("Not found."))
        except ValidationError as invalid:
            return _error(400, " ".join(invalid.messages))
        except PermissionDenied as denied:
            return _error(403, str(denied) or _("You may not do this."))
        except services.RoomClosed as closed:
            return _error(409, str(closed))
        response["Cache-Control"] = "no-store, private"
        return response

    return wrapper


def _body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body)
    except ValueError:
        raise ValidationError(_("Send a JSON object.")) from None
    if not isinstance(data, dict):
        raise ValidationError(_("Send a JSON object."))
    return data


def _member_json(participant: Participant) -> dict[str, Any]:
    user = participant.user
    membership = user.memberships.filter(is_active=True, institution__is_active=True).select_related("institution")
    first = membership.first()
    institution = (
        {"code": first.institution.code, "name": first.institution.name_ko, "name_en": first.institution.name_en}
        if first
        else None
    )
    return {"user": user.pk, "name": user.get_full_name(), "institution": institution, "colour": participant.colour}


def room_json(room: Room, user: User) -> dict[str, Any]:
    room_id = str(room.uuid)
    study_uid = room.study.study_instance_uid
    return {
        "id": room_id,
        "kind": room.kind,
        "title": room.title,
        "study": study_uid,
        "consultation": str(room.consultation.uuid) if room.consultation else None,
        "owner": {"user": room.created_by_id, "name": room.created_by.get_full_name()},
        "created_at": room.created_at.isoformat(),
        "closed_at": room.closed_at.isoformat() if room.closed_at else None,
        "members": [_member_json(p) for p in services.members(room)],
        "can_manage": room.consultation_id is None and room.created_by_id == user.pk and room.is_open,
        "websocket": f"/ws/coreading/{room_id}/",
        "viewer": reverse("study-viewer", args=[study_uid]) + f"?room={room_id}",
    }


def consultation_label(consultation: Consultation) -> str:
    return _("Reading request: %(requester)s → %(target)s") % {
        "requester": consultation.requesting_institution.display_name,
        "target": consultation.target_institution.display_name,
    }


def openable_json(consultation: Consultation) -> dict[str, Any]:
    """A consultation whose room the user may open (POST to ``open``) and nobody opened yet."""
    return {
        "consultation": str(consultation.uuid),
        "title": consultation_label(consultation),
        "status": consultation.status,
        "requested_at": consultation.created_at.isoformat(),
        "open": reverse("coreading-consultation-room", args=[consultation.uuid]),
    }


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@require_http_methods(["GET", "POST"])
@json_api
def study_rooms(request: HttpRequest, study_uid: str) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        study = access_study(user, study_uid)
        title = _body(request).get("title", "")
        if not isinstance(title, str):
            raise ValidationError(_("The title must be text."))
        room = services.room_create(actor=user, study=study, title=title, request=request)
        return JsonResponse(room_json(room, user), status=201)
    study = access_study(user, study_uid)
    rooms = [room_json(room, user) for room in services.rooms_for_study(user, study_uid)]
    openable = [openable_json(consultation) for consultation in services.openable_consultations(user, study)]
    return JsonResponse({"rooms": rooms, "openable": openable})


@require_http_methods(["GET", "POST"])
@json_api
def consultation_room(request: HttpRequest, consultation_uuid: str) -> HttpResponse:
    user = _user(request)
    room, created = services.consultation_room(
        actor=user, consultation_uuid=consultation_uuid, create=request.method == "POST", request=request
    )
    return JsonResponse(room_json(room, user), status=201 if created else 200)


@require_GET
@json_api
def room_detail(request: HttpRequest, room_id: str) -> HttpResponse:
    user = _user(request)
    return JsonResponse(room_json(services.access_room(user, room_id), user))


@require_POST
@json_api
def room_invite(request: HttpRequest, room_id: str) -> HttpResponse:
    user = _user(request)
    room = services.access_room(user, room_id)
    who = _body(request).get("user", "")
    if not isinstance(who, str) or not who.strip():
        raise ValidationError(_("Give the username or e-mail address of the person to invite."))
    participant = services.participant_invite(room=room, actor=user, who=who, request=request)
    return JsonResponse({"member": _member_json(participant)}, status=201)


@require_http_methods(["DELETE"])
@json_api
def room_remove(request: HttpRequest, room_id: str, user_id: int) -> HttpResponse:
    user = _user(request)
    room = services.access_room(user, room_id)
    services.participant_remove(room=room, actor=user, user_id=user_id, request=request)
    return HttpResponse(status=204)


@require_POST
@json_api
def room_close(request: HttpRequest, room_id: str) -> HttpResponse:
    user = _user(request)
    room = services.access_room(user, room_id)
    services.room_close_by_owner(room=room, actor=user, request=request)
    return JsonResponse(room_json(room, user))


@require_GET
def room_open(request: HttpRequest, room_id: str) -> HttpResponse:
    """A link that fits in a notification: to the viewer with the room."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?next={request.path}")
    room = services.access_room(request.user, room_id)
    return redirect(reverse("study-viewer", args=[room.study.study_instance_uid]) + f"?room={room.uuid}")


@require_POST
def consultation_room_open(request: HttpRequest, consultation_uuid: str) -> HttpResponse:
    """The study page's "Read together" on a consultation: open (or find) its room, then the viewer in it."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?next={request.path}")
    try:
        room, _created = services.consultation_room(
            actor=_user(request), consultation_uuid=consultation_uuid, create=True, request=request
        )
    except services.RoomClosed as closed:
        consultation = access_consultation(request.user, consultation_uuid)
        messages.error(request, str(closed))
        return redirect(reverse("study-detail", args=[consultation.study.study_instance_uid]))
    return redirect(reverse("study-viewer", args=[room.study.study_instance_uid]) + f"?room={room.uuid}")


def _room_label(room: Room) -> str:
    if room.title:
        return room.title
    if room.consultation is not None:
        return consultation_label(room.consultation)
    return _("Room opened by %(name)s") % {"name": room.created_by.get_full_name()}


def study_panel(request: HttpRequest, study: Study) -> Panel | None:
    """ "Read together" on the study page: the rooms one may join and the consultation rooms one may open."""
    user = request.user
    if not isinstance(user, User):
        return None
    viewer = reverse("study-viewer", args=[study.study_instance_uid])
    rooms = [
        {"id": str(room.uuid), "label": _room_label(room), "viewer": f"{viewer}?room={room.uuid}"}
        for room in services.rooms_for_study(user, study.study_instance_uid)
    ]
    openable = [
        {
            "consultation": str(consultation.uuid),
            "label": consultation_label(consultation),
            "open": reverse("coreading-consultation-room-open", args=[consultation.uuid]),
        }
        for consultation in services.openable_consultations(user, study)
    ]
    return Panel("coreading/study_panel.html", {"rooms": rooms, "openable": openable, "viewer": viewer})
