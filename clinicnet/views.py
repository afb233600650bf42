"""Site-wide views that belong to no app."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin's): the site's icon."""
    return HttpResponsePermanentRedirect(static("clinicnet/favicon.svg"))
