"""imaging.dicomweb.multipart: one splitter for STOW-RS bodies, whichever way the body is cut into pieces."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import RequestAborted

from imaging.dicomweb.multipart import (
    MalformedMultipart,
    MultipartReader,
    MultipartSplitter,
    Part,
    SplitBody,
    read_split_body,
)
from imaging.testing import testdata_path

BOUNDARY = "bound"
# Contents that come close to the delimiter ("\r\n--bound") without being it, and an empty part.
CONTENTS = [
    b"\r\n--boun",
    b"",
    b"--bound at the start, \r\n--bounc in the middle and a CR at the end\r",
    testdata_path("CT_small.dcm").read_bytes(),
    b"\r\n-",
]


def body_of(contents: list[bytes]) -> bytes:
    """A body with a preamble, transport padding, one part without headers and an epilogue."""
    out = b"a preamble to ignore\r\n"
    for index, content in enumerate(contents):
        padding = b" \t" if index == 1 else b""
        headers = b"\r\n" if index == 2 else b"Content-Type: application/dicom\r\nContent-Location: p%d\r\n\r\n" % index
        out += b"--" + BOUNDARY.encode() + padding + b"\r\n" + headers + content + b"\r\n"
    return out + b"--" + BOUNDARY.encode() + b"--\r\nan epilogue to ignore"


def split(body: bytes, piece: int, spool: Path) -> list[Part]:
    splitter = MultipartSplitter(BOUNDARY, str(spool))
    for start in range(0, len(body), piece):
        splitter.feed(body[start : start + piece])
    splitter.finish()
    return list(splitter.parts)


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 8, 9, 10, 11, 64, 4095, 4097, 1 << 20])
def test_every_way_of_cutting_the_body_gives_the_same_parts(piece: int, tmp_path: Path) -> None:
    parts = split(body_of(CONTENTS), piece, tmp_path)
    assert [part.path.read_bytes() for part in parts] == CONTENTS
    assert [part.size for part in parts] == [len(content) for content in CONTENTS]
    assert [part.sha256 for part in parts] == [hashlib.sha256(content).hexdigest() for content in CONTENTS]
    assert parts[0].headers == {"content-type": "application/dicom", "content-location": "p0"}
    assert parts[2].headers == {}
    assert sorted(tmp_path.iterdir()) == sorted(part.path for part in parts)  # nothing else left behind


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"no delimiter at all", "holds no part"),
        (b"--bound\r\nContent-Type: application/dicom\r\n\r\nthe closing delimiter never comes", "ends inside a part"),
        (b"--bound\r\nContent-Type: application/dicom\r\n", "headers do not end"),
        (b"--bound\r\nContent-Type application/dicom\r\n\r\nx\r\n--bound--", "malformed part header line"),
        (b"--bound junk\r\n\r\nx\r\n--bound--", "unexpected text after a boundary"),
        (b"--bound", "not followed by a line break"),
    ],
)
def test_a_broken_body_is_refused_with_its_reason_and_leaves_no_file(body: bytes, reason: str, tmp_path: Path) -> None:
    for piece in (1, 7, len(body)):
        splitter = MultipartSplitter(BOUNDARY, str(tmp_path))
        with pytest.raises(MalformedMultipart, match=reason):
            for start in range(0, len(body), piece):
                splitter.feed(body[start : start + piece])
            splitter.finish()
        splitter.discard()
        assert list(tmp_path.iterdir()) == []


def test_headers_without_an_end_are_refused_before_they_fill_memory(tmp_path: Path) -> None:
    splitter = MultipartSplitter(BOUNDARY, str(tmp_path))
    with pytest.raises(MalformedMultipart, match="headers do not end"):
        splitter.feed(b"--bound\r\nX-Long: " + b"a" * 100_000)


def test_the_reader_removes_each_part_once_the_next_is_asked_for(tmp_path: Path) -> None:
    class Stream:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def read(self, size: int = -1) -> bytes:
            out, self.data = self.data[:size], self.data[size:]
            return out

    seen = []
    for part in MultipartReader(Stream(body_of(CONTENTS)), BOUNDARY, str(tmp_path), chunk_size=7):
        seen.append(part.path.read_bytes())
        assert list(tmp_path.iterdir()) == [part.path]
    assert seen == CONTENTS
    assert list(tmp_path.iterdir()) == []


def _receive(messages: list[dict[str, Any]]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def _messages(body: bytes, piece: int) -> list[dict[str, Any]]:
    pieces = [body[start : start + piece] for start in range(0, len(body), piece)]
    return [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]


def test_a_body_split_as_it_arrives_gives_its_parts_and_then_cleans_up(tmp_path: Path) -> None:
    body = asyncio.run(read_split_body(_receive(_messages(body_of(CONTENTS), 1000)), BOUNDARY, str(tmp_path)))
    assert isinstance(body, SplitBody)
    assert body.read() == b""  # the bytes are in the parts' files, not kept twice
    taken = []
    for part in body:
        taken.append(part.path.read_bytes())
        if len(taken) == 2:
            break  # the view stops early (an error): close() removes what nobody took
    body.close()
    assert taken == CONTENTS[:2]
    assert list(tmp_path.iterdir()) == []


def test_a_body_broken_halfway_gives_the_parts_before_and_then_its_reason(tmp_path: Path) -> None:
    cut = body_of(CONTENTS[:2])[: -len(b"--bound--\r\nan epilogue to ignore")] + b"--bound\r\nBroken header\r\n\r\n"
    body = asyncio.run(read_split_body(_receive(_messages(cut + b"x" * 5000, 64)), BOUNDARY, str(tmp_path)))
    taken = []
    with pytest.raises(MalformedMultipart, match="malformed part header line"):
        for part in body:
            taken.append(part.path.read_bytes())
    body.close()
    assert taken == CONTENTS[:2]
    assert list(tmp_path.iterdir()) == []


def test_a_client_that_goes_away_mid_body_leaves_nothing(tmp_path: Path) -> None:
    messages = [*_messages(body_of(CONTENTS), 100)[:20], {"type": "http.disconnect"}]
    with pytest.raises(RequestAborted):
        asyncio.run(read_split_body(_receive(messages), BOUNDARY, str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_reported_as_the_error_of_the_body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("imaging.dicomweb.multipart.os.write", no_space)
    body = asyncio.run(read_split_body(_receive(_messages(body_of(CONTENTS), 100)), BOUNDARY, str(tmp_path)))
    with pytest.raises(OSError, match="No space left"):
        list(body)
    body.close()
    assert list(tmp_path.iterdir()) == []
