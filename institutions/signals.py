"""Remember which session belongs to whom, so access can be cut at once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from institutions.models import LoginSession


@receiver(user_logged_in)
def remember_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    if request.session.session_key is None:
        request.session.save()
    key = request.session.session_key
    if key:
        LoginSession.objects.update_or_create(session_key=key, defaults={"user": user})
    # Sessions that ended by expiry leave rows behind; drop the user's dead ones.
    from django.contrib.sessions.models import Session

    live = Session.objects.filter(session_key__in=user.login_sessions.values("session_key")).values("session_key")
    user.login_sessions.exclude(session_key__in=live).exclude(session_key=key).delete()


@receiver(user_logged_out)
def forget_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session") and request.session.session_key:
        LoginSession.objects.filter(session_key=request.session.session_key).delete()
