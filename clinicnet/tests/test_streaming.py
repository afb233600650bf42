"""Streaming responses under ASGI are sent as they are read, not collected into a list first."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.test import AsyncRequestFactory, RequestFactory

from clinicnet.streaming import AsyncStreamingMiddleware, async_chunks

# Closing a response sends request_finished, which closes the database connections.
pytestmark = pytest.mark.django_db


def _send_over_asgi(response: HttpResponseBase) -> bytes:
    """The body as Django's ASGI handler sends it, with its warnings made errors."""
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "StreamingHttpResponse must consume synchronous iterators"
        asyncio.run(ASGIHandler().send_response(response, send))
    return b"".join(message.get("body", b"") for message in messages if message["type"] == "http.response.body")


def _file_response(path: Path) -> FileResponse:
    response = FileResponse(path.open("rb"), content_type="application/octet-stream")
    response.block_size = 64 * 1024
    return response


def test_a_file_response_to_an_asgi_request_streams_and_closes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "bundle.js"
    path.write_bytes(bytes(range(256)) * 1000)  # 256 kB: several chunks
    response = _file_response(path)
    handle = response.file_to_stream
    middleware = AsyncStreamingMiddleware(lambda request: response)
    streamed = middleware(AsyncRequestFactory().get("/static/bundle.js"))
    assert isinstance(streamed, StreamingHttpResponse) and streamed.is_async
    assert _send_over_asgi(streamed) == path.read_bytes()
    assert handle is not None and not handle.closed
    streamed.close()  # as Django's handler does once the body is sent
    assert handle.closed


def test_wsgi_requests_and_asynchronous_streams_are_left_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 1000)
    response = _file_response(path)
    assert AsyncStreamingMiddleware(lambda request: response)(RequestFactory().get("/f")) is response
    assert not response.is_async
    response.close()

    async def parts() -> Any:
        yield b"already asynchronous"

    stream = StreamingHttpResponse(parts())
    request: HttpRequest = AsyncRequestFactory().get("/s")
    assert AsyncStreamingMiddleware(lambda request: stream)(request) is stream
    assert _send_over_asgi(stream) == b"already asynchronous"


def test_async_chunks_reads_each_chunk_and_closes_the_source() -> None:
    closed = []

    def source() -> Any:
        try:
            yield b"a"
            yield b"b"
        finally:
            closed.append(True)

    async def collect() -> list[bytes]:
        return [chunk async for chunk in async_chunks(source())]

    assert asyncio.run(collect()) == [b"a", b"b"]
    assert closed == [True]
