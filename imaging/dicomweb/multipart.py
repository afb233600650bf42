"""multipart/related bodies (RFC 2387) for DICOMweb: writing retrieves, reading STOW requests.

Both directions stream. :func:`part_header` and :func:`closing` frame parts
that the caller sends chunk by chunk. :class:`MultipartSplitter` takes a
request body piece by piece, however it is cut, and writes each part's content
to a temporary file as it comes, so a 1 GB STOW-RS request needs kilobytes of
memory, not a gigabyte. It is driven by the ASGI server's body messages
(:func:`read_split_body`, giving a :class:`SplitBody`) or by reads from a
stream (:class:`MultipartReader`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.core.exceptions import RequestAborted

READ_CHUNK = 1024 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024


class MalformedMultipart(ValueError):
    """The body is not the multipart/related message its Content-Type announced."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def new_boundary() -> str:
    return f"clinicnet-{secrets.token_hex(16)}"


def content_type(part_type: str, boundary: str, transfer_syntax: str | None = None) -> str:
    value = f'multipart/related; type="{part_type}"; boundary={boundary}'
    return value + (f"; transfer-syntax={transfer_syntax}" if transfer_syntax else "")


def part_header(boundary: str, part_content_type: str, location: str | None = None) -> bytes:
    """The delimiter and headers that open one part (the previous part's CRLF included)."""
    lines = [f"--{boundary}", f"Content-Type: {part_content_type}"]
    if location:
        lines.append(f"Content-Location: {location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def part_end() -> bytes:
    return b"\r\n"


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin-1")


# --- reading ---------------------------------------------------------------------------------


@dataclass
class Part:
    """One part of a request: its headers (lower-case names), where its content was spooled, and its SHA-256."""

    headers: dict[str, str]
    path: Path
    size: int
    sha256: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


# Where the splitter is in the body (RFC 2046 5.1.1).
_PREAMBLE, _DELIMITED, _HEADERS, _CONTENT, _EPILOGUE = range(5)
# Bytes taken at a time outside part contents (delimiter lines, headers): small, so that
# the content that follows a part's headers is seldom copied.
_TEXT_STEP = 4096


class MultipartSplitter:
    """Split a multipart body, fed piece by piece as it arrives, into parts spooled to files.

    The one parser of STOW-RS bodies, driven either by the ASGI server's body
    messages (:func:`read_split_body`) or by reads from a stream
    (:class:`MultipartReader`). A part's content goes straight from the piece
    it arrived in to its file in *spool_dir*, hashed on the way; only the
    bytes that could begin a delimiter are held back. Completed parts wait in
    :attr:`parts`, and whoever takes one owns its file.
    """

    def __init__(self, boundary: str, spool_dir: str) -> None:
        if not boundary or len(boundary) > 200:
            raise MalformedMultipart("the Content-Type has no usable boundary parameter")
        self.parts: deque[Part] = deque()
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._spool_dir = spool_dir
        self._state = _PREAMBLE
        # Unparsed bytes outside part contents; a leading CRLF lets the first
        # boundary be found like every other delimiter.
        self._text = bytearray(b"\r\n")
        self._tail = b""  # the end of the content so far, held back: it may begin the delimiter
        self._headers: dict[str, str] = {}
        self._fd = -1
        self._path: Path | None = None
        self._digest = hashlib.sha256()
        self._size = 0

    @property
    def complete(self) -> bool:
        """Whether the closing delimiter has been read (what follows it is ignored)."""
        return self._state == _EPILOGUE

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body; raise :class:`MalformedMultipart` if it breaks the format."""
        position = 0
        while position < len(data) and self._state != _EPILOGUE:
            if self._state == _CONTENT:
                position = self._content(data, position)
            else:
                step = data[position : position + _TEXT_STEP]
                self._text += step
                position += len(step)
                self._parse_text()

    def finish(self) -> None:
        """The body has ended: raise :class:`MalformedMultipart` unless it ended after its closing delimiter."""
        if self._state == _EPILOGUE:
            return
        self.abort()
        if self._state == _PREAMBLE:
            raise MalformedMultipart("the body holds no part delimited by its boundary")
        if self._state == _DELIMITED:
            raise MalformedMultipart("a boundary delimiter is not followed by a line break")
        if self._state == _HEADERS:
            raise MalformedMultipart("a part's headers do not end with an empty line")
        raise MalformedMultipart("the body ends inside a part: the closing boundary is missing")

    def abort(self) -> None:
        """Stop writing: remove the file of the part under way (completed parts stay in :attr:`parts`)."""
        self._close_file(keep=False)

    def discard(self) -> None:
        """Remove every spooled file nobody has taken: the part under way and the completed ones."""
        self.abort()
        while self.parts:
            discard(self.parts.popleft().path)

    # --- outside part contents: small amounts, parsed from self._text

    def _parse_text(self) -> None:
        while self._text and self._state != _EPILOGUE:
            if self._state == _CONTENT:
                text = bytes(self._text)
                self._text.clear()
                used = self._content(text, 0)
                self._text += text[used:]
            elif not self._advance():
                return

    def _advance(self) -> bool:
        """One step outside part contents; False when it needs more of the body."""
        text = self._text
        if self._state == _PREAMBLE:
            index = text.find(self._delimiter)
            if index < 0:
                del text[: -(len(self._delimiter) - 1)]  # keep what could begin the delimiter
                return False
            del text[: index + len(self._delimiter)]
            self._state = _DELIMITED
            return True
        if self._state == _DELIMITED:
            if len(text) < 2:
                return False
            if text[:2] == b"--":
                text.clear()
                self._state = _EPILOGUE
                return True
            end = text.find(b"\r\n")  # transport padding (spaces, tabs), then CRLF
            if end < 0:
                if len(text) > 1024:
                    raise MalformedMultipart("a boundary delimiter is not followed by a line break")
                return False
            if text[:end].strip(b" \t"):
                raise MalformedMultipart("unexpected text after a boundary delimiter")
            del text[: end + 2]
            self._state = _HEADERS
            return True
        # _HEADERS
        if text[:2] == b"\r\n":
            raw, consumed = b"", 2
        else:
            end = text.find(b"\r\n\r\n")
            if end < 0:
                if len(text) > MAX_PART_HEADER_BYTES:
                    raise MalformedMultipart("a part's headers do not end with an empty line")
                return False
            raw, consumed = bytes(text[:end]), end + 4
        del text[:consumed]
        self._headers = _parse_headers(raw.decode("latin-1"))
        self._open_file()
        self._state = _CONTENT
        return True

    # --- part contents: straight from the piece they arrived in to the part's file

    def _content(self, data: bytes, start: int) -> int:
        """Write the part's content found in *data* from *start*; where parsing goes on in *data*."""
        delimiter, tail = self._delimiter, self._tail
        keep = len(delimiter) - 1
        if tail:
            index = (tail + data[start : start + keep]).find(delimiter)
            if 0 <= index < len(tail):  # the delimiter begins in what was held back
                self._write(tail[:index])
                self._tail = b""
                self._end_part()
                return start + index + len(delimiter) - len(tail)
        index = data.find(delimiter, start)
        with memoryview(data) as view:
            if index >= 0:
                self._write(tail)
                self._write(view[start:index])
                self._tail = b""
                self._end_part()
                return index + len(delimiter)
            if len(data) - start >= keep:
                self._write(tail)
                self._write(view[start : len(data) - keep])
                self._tail = data[len(data) - keep :]
            else:  # a short piece: what is held back grows by it, and keeps only what could begin the delimiter
                held = tail + data[start:]
                cut = max(0, len(held) - keep)
                self._write(held[:cut])
                self._tail = held[cut:]
        return len(data)

    def _write(self, piece: bytes | memoryview) -> None:
        if not piece:
            return
        self._digest.update(piece)
        self._size += len(piece)
        with memoryview(piece) as view:
            written = 0
            while written < len(view):  # a regular file takes it all at once, unless the disk is full
                written += os.write(self._fd, view[written:])

    def _open_file(self) -> None:
        self._fd, name = tempfile.mkstemp(dir=self._spool_dir, suffix=".part")
        self._path = Path(name)
        self._digest = hashlib.sha256()
        self._size = 0

    def _end_part(self) -> None:
        path = self._close_file(keep=True)
        assert path is not None
        self.parts.append(Part(headers=self._headers, path=path, size=self._size, sha256=self._digest.hexdigest()))
        self._state = _DELIMITED

    def _close_file(self, *, keep: bool) -> Path | None:
        path, self._path = self._path, None
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
        if path is not None and not keep:
            discard(path)
        return path


def _parse_headers(raw: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.split("\r\n") if raw else []:
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedMultipart(f"malformed part header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


class _Parts:
    """The parts of a body as a splitter gives them, each part's file removed when the next is asked for.

    Subclasses say where more of the body comes from (:meth:`_more`). Closing
    removes the files of the part in hand and of every part nobody took.
    """

    def __init__(self, splitter: MultipartSplitter) -> None:
        self.splitter = splitter
        self._current: Path | None = None

    def _more(self) -> bool:
        """Split more of the body; False when it has no more parts to give (raise what broke it)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Part]:
        parts = self.splitter.parts
        try:
            while parts or self._more():
                if parts:
                    self._drop_current()
                    part = parts.popleft()
                    self._current = part.path
                    yield part
        finally:
            self.close()

    def _drop_current(self) -> None:
        if self._current is not None:
            discard(self._current)
            self._current = None

    def close(self) -> None:
        self._drop_current()
        self.splitter.discard()


class MultipartReader(_Parts):
    """Read a multipart body part by part from *stream*, spooling each part to a file in *spool_dir*.

    Iterate to get :class:`Part` objects; each part's file is deleted when the
    next part is read (or when the reader is closed), so the caller must be
    done with it by then. Used where no ASGI server split the body as it
    arrived (see :class:`SplitBody`).
    """

    def __init__(self, stream: Readable, boundary: str, spool_dir: str, chunk_size: int = READ_CHUNK) -> None:
        super().__init__(MultipartSplitter(boundary, spool_dir))
        self.stream = stream
        self.chunk_size = chunk_size

    def _more(self) -> bool:
        if self.splitter.complete:
            return False
        chunk = self.stream.read(self.chunk_size)
        if not chunk:
            self.splitter.finish()  # raises: the body ended before its closing delimiter
            return False
        self.splitter.feed(chunk)
        return True


class SplitBody(_Parts):
    """A STOW-RS request body split into spooled parts while it arrived (:func:`read_split_body`).

    It stands where Django would keep the request's body (so it is closed with
    the request, and closing removes the files of parts nobody took); the
    body's bytes themselves are not kept. Iterating gives the parts as
    :class:`MultipartReader` does, then raises what broke the body, if anything.
    """

    def __init__(self, splitter: MultipartSplitter) -> None:
        super().__init__(splitter)
        self.error: MalformedMultipart | OSError | None = None

    def feed(self, data: bytes) -> None:
        """Split the next piece of the body; after an error the rest of the body is read and ignored."""
        if self.error is not None or not data:
            return
        try:
            self.splitter.feed(data)
        except (MalformedMultipart, OSError) as exc:
            self._fail(exc)

    def finish(self) -> None:
        if self.error is None:
            try:
                self.splitter.finish()
            except MalformedMultipart as exc:
                self._fail(exc)

    def _fail(self, exc: MalformedMultipart | OSError) -> None:
        self.error = exc
        self.splitter.abort()

    def _more(self) -> bool:
        if self.error is not None:
            self._drop_current()  # done with the last part: the caller gets the error now
            raise self.error
        return False

    def read(self, size: int = -1, /) -> bytes:
        return b""  # the bytes went to the parts' files


async def read_split_body(receive: Callable[[], Awaitable[dict[str, Any]]], boundary: str, spool_dir: str) -> SplitBody:
    """Receive an ASGI request body, splitting it into spooled parts as it arrives.

    Each part is written once, from the message it arrived in to its file;
    Django's own reading would spool the whole body to a file first, to be
    read back and written again part by part. Raises ``RequestAborted`` (with
    nothing left on disk) when the client goes away before the body's end.
    """
    body = SplitBody(MultipartSplitter(boundary, spool_dir))
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestAborted()
            body.feed(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body.finish()
    except BaseException:
        body.close()
        raise
    return body


def discard(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
