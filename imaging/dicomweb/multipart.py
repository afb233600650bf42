"""multipart/related bodies (RFC 2387) for DICOMweb: writing retrieves, reading STOW requests.

Both directions stream. :func:`part_header` and :func:`closing` frame parts
that the caller sends chunk by chunk; :class:`MultipartReader` reads a
request body from a file-like stream in fixed-size chunks and writes each
part's content to a temporary file, so a 1 GB STOW-RS request needs a few
megabytes of memory, not a gigabyte.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


class MultipartReader:
    """Read a multipart body part by part from *stream*, spooling each part to a file in *spool_dir*.

    Iterate to get :class:`Part` objects; each part's file is deleted when the
    next part is read (or when the reader is closed), so the caller must be
    done with it by then.
    """

    def __init__(self, stream: Readable, boundary: str, spool_dir: str, chunk_size: int = READ_CHUNK) -> None:
        if not boundary or len(boundary) > 200:
            raise MalformedMultipart("the Content-Type has no usable boundary parameter")
        self.stream = stream
        self.delimiter = b"\r\n--" + boundary.encode("latin-1")
        self.spool_dir = spool_dir
        self.chunk_size = chunk_size
        # A leading CRLF lets the first boundary be found like every other delimiter.
        self.buffer = bytearray(b"\r\n")
        self.eof = False
        self._current: Path | None = None

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.stream.read(self.chunk_size)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def _skip_preamble(self) -> None:
        while True:
            index = self.buffer.find(self.delimiter)
            if index >= 0:
                del self.buffer[: index + len(self.delimiter)]
                return
            # Keep a tail that could hold the start of the delimiter.
            keep = len(self.delimiter)
            if len(self.buffer) > keep:
                del self.buffer[:-keep]
            if not self._fill():
                raise MalformedMultipart("the body holds no part delimited by its boundary")

    def _after_delimiter(self) -> bool:
        """After a delimiter: True when a part follows, False at the closing ``--``."""
        while len(self.buffer) < 2 and self._fill():
            pass
        if self.buffer[:2] == b"--":
            return False
        # Transport padding (spaces, tabs) then CRLF.
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                if self.buffer[:end].strip(b" \t"):
                    raise MalformedMultipart("unexpected text after a boundary delimiter")
                del self.buffer[: end + 2]
                return True
            if len(self.buffer) > 1024 or not self._fill():
                raise MalformedMultipart("a boundary delimiter is not followed by a line break")

    def _headers(self) -> dict[str, str]:
        while True:
            if self.buffer.startswith(b"\r\n"):
                del self.buffer[:2]
                return {}
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buffer) > MAX_PART_HEADER_BYTES or not self._fill():
                raise MalformedMultipart("a part's headers do not end with an empty line")
        raw = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        headers: dict[str, str] = {}
        for line in raw.split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep:
                raise MalformedMultipart(f"malformed part header line: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        return headers

    def _content_to(self, handle: tempfile._TemporaryFileWrapper[bytes]) -> tuple[int, str]:
        """Write the part's content to *handle*; its size and SHA-256 (hashed as written, not read back)."""
        size = 0
        digest = hashlib.sha256()
        keep = len(self.delimiter) - 1
        while True:
            index = self.buffer.find(self.delimiter)
            if index >= 0:
                self._write(handle, digest, index)
                size += index
                del self.buffer[: len(self.delimiter)]
                return size, digest.hexdigest()
            if len(self.buffer) > keep:
                cut = len(self.buffer) - keep
                self._write(handle, digest, cut)
                size += cut
            if not self._fill():
                raise MalformedMultipart("the body ends inside a part: the closing boundary is missing")

    def _write(self, handle: tempfile._TemporaryFileWrapper[bytes], digest: hashlib._Hash, count: int) -> None:
        """Write and hash the first *count* bytes of the buffer, then drop them (no copy of the bytes)."""
        with memoryview(self.buffer) as view, view[:count] as content:
            handle.write(content)
            digest.update(content)
        del self.buffer[:count]

    def _drop_current(self) -> None:
        if self._current is not None:
            self._current.unlink(missing_ok=True)
            self._current = None

    def __iter__(self) -> Iterator[Part]:
        try:
            self._skip_preamble()
            while self._after_delimiter():
                headers = self._headers()
                self._drop_current()
                handle = tempfile.NamedTemporaryFile(dir=self.spool_dir, suffix=".part", delete=False)
                self._current = Path(handle.name)
                try:
                    size, sha256 = self._content_to(handle)
                finally:
                    handle.close()
                yield Part(headers=headers, path=self._current, size=size, sha256=sha256)
        finally:
            self.close()

    def close(self) -> None:
        self._drop_current()


def discard(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
