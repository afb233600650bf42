from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from consult.access import READER_ROLES
from consult.notify import unread_count
from institutions import permissions


def notifications(request: HttpRequest) -> dict[str, Any]:
    """The unread count and which consultation links the navigation shows."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "consult_unread": unread_count(user),
        "consult_is_reader": permissions.institutions_of(user, roles=READER_ROLES).exists(),
        "consult_is_requester": permissions.active_memberships(user).exclude(role__in=READER_ROLES).exists(),
    }
