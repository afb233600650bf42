"""Idle sessions expire; renewing one costs a database write at most once a minute.

Django's ``SESSION_SAVE_EVERY_REQUEST`` renews the expiry by writing the session
on every request. The viewer sends hundreds of requests a minute (every frame of
a series is one), and each would write the session row. This middleware marks a
signed-in session for saving only when it was last renewed more than
``SESSION_RENEW_SECONDS`` ago (60 by default), so the idle timeout
(``SESSION_COOKIE_AGE``) still runs from the last minute of activity.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

RENEWED_KEY = "_renewed"


class SessionRenewalMiddleware:
    """Listed after SessionMiddleware, so that SessionMiddleware saves what this marks."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # An empty session is an anonymous visitor's (or one just signed out): nothing to renew.
        if session is None or session.is_empty():
            return response
        now = int(time.time())
        every = int(getattr(settings, "SESSION_RENEW_SECONDS", 60))
        if session.modified or now - int(session.get(RENEWED_KEY, 0)) >= every:
            session[RENEWED_KEY] = now
        return response
