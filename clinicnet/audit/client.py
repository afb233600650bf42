"""Who is on the other end of a request: address and user agent."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address, honouring X-Forwarded-For only when trusted.

    Behind nginx, REMOTE_ADDR is the proxy; the proxy appends the real peer
    as the last entry of X-Forwarded-For. Anything earlier in that header was
    written by the client and cannot be believed.
    """
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:300]
