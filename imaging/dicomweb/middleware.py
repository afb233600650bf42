"""/dicomweb/ requests take a shorter middleware chain, run in one thread.

A viewer reads a study as hundreds of requests a minute (every frame of a series
is one), so what Django does around each view counts as much as the view. Under
ASGI, Django runs each middleware in the mode the chain around it allows: with
sync-only middleware in ``MIDDLEWARE`` (WhiteNoise, ours) and async-capable ones
after them (messages, clickjacking, axes), one request went from its thread to
the event loop and back six times. Measured in-process on PostgreSQL, a request
that reaches no database (a CORS preflight) cost 2.3 ms of CPU that way, and
1.1–1.6 ms through the chain below (bench/README.md, DICOMweb).

This middleware is first in ``MIDDLEWARE``. It hands /dicomweb/ requests to
``settings.DICOMWEB_MIDDLEWARE``, the part of the chain they need, built once in
synchronous mode: the whole request (middleware and view) then runs in the one
thread Django already gave it, as under a WSGI server. Every other request goes
on through ``MIDDLEWARE`` as before.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase

PREFIX = "/dicomweb/"


class _DicomwebHandler(BaseHandler):
    """Django's request handling with ``DICOMWEB_MIDDLEWARE`` as its chain, synchronous."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE; point it at the shorter list while it builds the
        # chain (once, at start-up, before any request is served).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.DICOMWEB_MIDDLEWARE
        try:
            super().load_middleware(is_async=False)
        finally:
            settings.MIDDLEWARE = full


def dicomweb_handler() -> _DicomwebHandler:
    """A request handler whose chain is ``DICOMWEB_MIDDLEWARE``, built in synchronous mode."""
    handler = _DicomwebHandler()
    handler.load_middleware()
    return handler


class DicomwebMiddleware:
    """First in ``MIDDLEWARE``: /dicomweb/ requests go through ``DICOMWEB_MIDDLEWARE`` instead of the rest."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        handler = dicomweb_handler()
        self.dicomweb: Callable[[HttpRequest], HttpResponseBase] = handler._middleware_chain  # type: ignore[attr-defined]  # set by load_middleware

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(PREFIX):
            return self.dicomweb(request)
        return self.get_response(request)
