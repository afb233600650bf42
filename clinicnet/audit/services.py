"""The one way to write to the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.http import HttpRequest

from clinicnet.audit.client import client_address, user_agent
from clinicnet.audit.models import AuditEvent

if TYPE_CHECKING:
    from institutions.models import Institution, User


def audit_record(
    *,
    action: str,
    request: HttpRequest | None = None,
    actor: User | None = None,
    actor_label: str = "",
    institution: Institution | None = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    address: str | None = None,
    agent: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit trail.

    The actor, address and user agent default to what *request* carries, so a
    view only names the action and the object. Code outside a request (a
    management command, the DIMSE server) passes them explicitly.
    """
    if request is not None:
        user = getattr(request, "user", None)
        if actor is None and user is not None and user.is_authenticated:
            actor = user
        address = address or client_address(request)
        agent = agent or user_agent(request)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    if actor is not None and not actor_label:
        actor_label = actor.get_username()
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label[:254],
        institution=institution,
        object_type=object_type,
        object_id=str(object_id)[:128],
        client_address=address,
        user_agent=agent[:300],
        detail=detail or {},
    )
