"""Who may see a consultation — the one check for every consultation page,
report, comment, key image and notification link.

A user sees a consultation when

* they hold an active membership (any role) at the requesting institution, or
* they are a reader at the target institution.

Unknown and forbidden look the same: ``access_consultation`` raises Http404
for both. Seeing the consultation does not by itself show the study's
images: those still go through ``imaging.access`` (the consultation's grant
lets the target's readers in while it is open).
"""

from __future__ import annotations

import uuid

from django.db.models import Q, QuerySet
from django.http import Http404

from consult.models import Consultation
from institutions import permissions
from institutions.models import Role, User

READER_ROLES = (Role.READER,)


def visible_consultations(user: User | object) -> QuerySet[Consultation]:
    """Every consultation *user* may see (no ordering applied)."""
    requesting = permissions.institutions_of(user)
    reading = permissions.institutions_of(user, roles=READER_ROLES)
    return Consultation.objects.filter(Q(requesting_institution__in=requesting) | Q(target_institution__in=reading))


def access_consultation(user: User | object, consultation_uuid: uuid.UUID | str) -> Consultation:
    """The consultation *user* may see, or Http404."""
    try:
        key = uuid.UUID(str(consultation_uuid))
    except ValueError:
        raise Http404("No such consultation") from None
    consultation = (
        visible_consultations(user)
        .select_related(
            "study__patient", "study__institution", "requesting_institution", "target_institution", "requested_by"
        )
        .select_related("named_reader", "accepted_by")
        .filter(uuid=key)
        .first()
    )
    if consultation is None:
        raise Http404("No such consultation")
    return consultation


def is_requester(user: User | object, consultation: Consultation) -> bool:
    """A member of the requesting institution (the clinic side)."""
    return permissions.has_role(user, consultation.requesting_institution)


def is_target_reader(user: User | object, consultation: Consultation) -> bool:
    """A reader at the target institution (the reading side)."""
    return permissions.has_role(user, consultation.target_institution, *READER_ROLES)
