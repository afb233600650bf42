"""Streaming responses under ASGI, sent as they are read instead of collected first.

Django's ASGI handler collects a streaming response whose content is a
synchronous iterator — a ``FileResponse``, WhiteNoise's static files — into a
list before it sends a byte, with a warning. :func:`async_chunks` turns such an
iterator into an asynchronous one that reads each chunk in a worker thread;
:class:`AsyncStreamingMiddleware`, in ``MIDDLEWARE`` and in
``DICOMWEB_MIDDLEWARE``, gives it to every such response of an ASGI request:
static files, key images, DICOMweb's studies and frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from django.http.response import HttpResponseBase, StreamingHttpResponse


async def async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """*chunks*, each read in a worker thread; *chunks* is closed at the end, if it can be."""
    done = object()

    def next_chunk() -> object:
        return next(chunks, done)

    try:
        while True:
            chunk = await sync_to_async(next_chunk, thread_sensitive=False)()
            if chunk is done:
                return
            yield chunk  # type: ignore[misc]  # not done: one of the chunks
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


class AsyncStreamingMiddleware:
    """Give a streaming response to an ASGI request an asynchronous iterator (see the module docstring).

    In ``MIDDLEWARE`` before WhiteNoise's, so that it sees the static files it serves.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if isinstance(request, ASGIRequest) and isinstance(response, StreamingHttpResponse):
            content = response.streaming_content
            if isinstance(content, Iterator):  # not an asynchronous one already
                # The file, if any, stays among the response's closers: closed with the response.
                response.streaming_content = async_chunks(content)
        return response
