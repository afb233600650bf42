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


class ActiveAccessMiddleware:
    """Sign out a user who no longer has an active institution.

    Deactivated accounts are already anonymous (Django's backend refuses
    them); this covers the case where every membership or institution of the
    user was switched off while they were signed in.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not permissions.has_any_access(user):
            logout(request)
            if request.path.startswith(("/api/", "/dicomweb/")):
                return HttpResponse(status=401)
            messages.error(request, _("Your account has no active institution any more. Ask your institution admin."))
            return redirect("login")
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
