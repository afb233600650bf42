from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from institutions import permissions


def memberships(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's active memberships, for the navigation bar."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    active = list(permissions.active_memberships(user).select_related("institution").order_by("institution__code"))
    return {
        "my_memberships": active,
        "is_platform_admin": permissions.is_platform_admin(user),
        "my_admin_institutions": sorted(
            {m.institution for m in active if m.role == "institution_admin"}, key=lambda i: i.code
        ),
    }
