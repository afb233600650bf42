"""Per-request checks: is the signed-in user still allowed in, in which language."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import translation
from django.utils.translation import gettext as _

from institutions import permissions

# The signed-in user object of a request carries its active memberships as (institution id, role)
# pairs, read here once, so that the study access check of the same request (imaging.access, run
# for every frame the viewer fetches) does not read them again. Only this middleware sets it, on the
# user object it loads for one request, so it never outlives that request.
MEMBERSHIPS_ATTRIBUTE = "active_memberships_of_request"


class ActiveAccessMiddleware:
    """Sign out a user who no longer has an active institution.

    Deactivated accounts are already anonymous (Django's backend refuses
    them); this covers the case where every membership or institution of the
    user was switched off while they were signed in. It reads the memberships
    on every request, so switching one off cuts access on the next request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return self.get_response(request)
        rows = permissions.active_membership_rows(user)
        # With an active membership the user has access; without, only a platform admin has.
        if not rows and not permissions.has_any_access(user):
            logout(request)
            if request.path.startswith(("/api/", "/dicomweb/")):
                return HttpResponse(status=401)
            messages.error(request, _("Your account has no active institution any more. Ask your institution admin."))
            return redirect("login")
        setattr(user, MEMBERSHIPS_ATTRIBUTE, rows)
        return self.get_response(request)


class UserLanguageMiddleware:
    """Use the signed-in user's saved language; before sign-in, the cookie decides."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and getattr(user, "language", None):
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)
