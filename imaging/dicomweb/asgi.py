"""Django's ASGI handler, with DICOMweb reads served in one thread hop.

A viewer reads a study as hundreds of small GETs (a frame, a rendered slice, a
thumbnail each). Django's ``ASGIHandler`` spends on every request, besides the
view: a new thread (its ``ThreadSensitiveContext`` gives each request an executor
of its own), three hand-offs to it (the ``request_started`` signal, the view,
``response.close`` with ``request_finished``), a task that listens for the
client going away, and the body sent in 64 KiB messages.

For ``GET`` and ``HEAD`` under ``/dicomweb/`` this handler does the synchronous
part — signals, the ``DICOMWEB_MIDDLEWARE`` chain, the view, closing — in one
call on a thread of the event loop's pool, as a WSGI server would, and sends a
complete body in one message. Streaming answers (whole studies, series,
instances) are sent as Django sends them and closed afterwards.

A STOW-RS request's body is split into its parts while it arrives
(:func:`imaging.dicomweb.multipart.read_split_body`), each part written once to
a spool file, instead of Django spooling the whole body to a file that the
view reads back and writes again part by part: at several hundred instances a
second, writing every byte twice was a tenth of the server's CPU (see
bench/README.md). The view then runs as Django runs any other.

Everything else goes through Django's own handling.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

from imaging.dicomweb.middleware import PREFIX, dicomweb_handler
from imaging.dicomweb.multipart import SplitBody, read_split_body
from imaging.dicomweb.negotiation import DICOM, MULTIPART, content_type_params
from imaging.ingest import spool_dir

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]

# STOW-RS: POST /studies and POST /studies/{uid} (imaging/dicomweb/urls.py).
_STOW_PATH = re.compile(rf"^{re.escape(PREFIX)}studies(/[^/]+)?$")


class _StowReceive:
    """The ``receive`` of a STOW-RS request, marked with its body's boundary for :meth:`read_body`."""

    def __init__(self, receive: Receive, boundary: str) -> None:
        self.receive = receive
        self.boundary = boundary

    async def __call__(self) -> dict[str, Any]:
        return await self.receive()


def _stow_boundary(scope: Scope) -> str | None:
    """The multipart boundary of a STOW-RS request the view will accept, else None (Django reads the body)."""
    if scope["method"] != "POST" or not _STOW_PATH.match(scope["path"]):
        return None
    content_type = next((value for name, value in scope["headers"] if name == b"content-type"), b"")
    media_type, params = content_type_params(content_type.decode("latin-1"))
    if media_type != MULTIPART or params.get("type", DICOM).lower() != DICOM:
        return None
    boundary = params.get("boundary", "")
    return boundary if 0 < len(boundary) <= 200 else None


class ClinicNetASGIHandler(ASGIHandler):
    """``ASGIHandler`` answering DICOMweb reads in one thread hop (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._dicomweb = dicomweb_handler()

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD") or not scope["path"].startswith(PREFIX):
            boundary = _stow_boundary(scope)
            await super().handle(scope, receive if boundary is None else _StowReceive(receive, boundary), send)
            return
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        response = await sync_to_async(self._respond, thread_sensitive=False)(scope, body_file)
        if not response.streaming:
            await send({"type": "http.response.start", "status": response.status_code, "headers": _headers(response)})
            body: bytes = response.content  # type: ignore[attr-defined]  # every complete response has it
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.send_response(response, send)
        finally:
            await sync_to_async(_close, thread_sensitive=False)(response, body_file)

    async def read_body(self, receive: Callable[[], Awaitable[Mapping[str, Any]]]) -> IO[bytes]:
        if isinstance(receive, _StowReceive):
            return await read_split_body(receive, receive.boundary, spool_dir())  # type: ignore[return-value]
        return await super().read_body(receive)

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        created = super().create_request(scope, body_file)
        if created[0] is not None and isinstance(body_file, SplitBody):
            created[0].split_body = body_file  # type: ignore[attr-defined]  # the STOW-RS view takes the parts here
        return created

    def _respond(self, scope: Scope, body_file: IO[bytes]) -> HttpResponseBase:
        """The request, start to end, in this thread; a complete answer is closed before it is sent."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self._dicomweb.get_response(request)
        assert response is not None
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # as Django's handler marks it
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            _close(response, body_file)
        return response


def _close(response: HttpResponseBase, body_file: IO[bytes]) -> None:
    try:
        response.close()  # sends request_finished: the thread's database connection goes back
    finally:
        body_file.close()


def _headers(response: HttpResponseBase) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.encode("ascii"), value.encode("latin-1") if isinstance(value, str) else bytes(value))
        for name, value in response.items()
    ]
    headers += [
        (b"Set-Cookie", cookie.output(header="").encode("ascii").strip()) for cookie in response.cookies.values()
    ]
    return headers
