"""The protocol module refuses every malformed message with a code and a message a person can act on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from coreading import protocol
from coreading.protocol import ProtocolError

LIMIT = 16384
VIEWPORT = {"layout": "1x1", "cells": [{"series": "1.2.3", "image": 4}]}


def parse(body: object) -> protocol.ClientMessage:
    return protocol.parse(json.dumps(body), max_bytes=LIMIT)


def refused(body: object | str | None) -> ProtocolError:
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    with pytest.raises(ProtocolError) as caught:
        protocol.parse(text, max_bytes=LIMIT)
    return caught.value


def test_a_viewport_gets_its_defaults_filled_in() -> None:
    message = parse({"v": 1, "type": "viewport", "id": "a-1", "data": VIEWPORT})
    cell = message.data["cells"][0]
    assert cell == {
        "series": "1.2.3",
        "image": 4,
        "zoom": 1.0,
        "rotation": 0.0,
        "invert": False,
        "window": None,
        "pan": [0.0, 0.0],
        "flip": {"h": False, "v": False},
    }
    assert message.id == "a-1"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", protocol.BAD_JSON),
        (None, protocol.BAD_MESSAGE),  # a binary frame
        ([1, 2], protocol.BAD_MESSAGE),
        ({"type": "ping"}, protocol.UNSUPPORTED_VERSION),
        ({"v": 2, "type": "ping"}, protocol.UNSUPPORTED_VERSION),
        ({"v": 1, "type": "teleport"}, protocol.UNKNOWN_TYPE),
        ({"v": 1, "type": "chat", "data": {"text": "hi"}}, protocol.BAD_MESSAGE),  # no id
        ({"v": 1, "type": "chat", "id": "a b", "data": {"text": "hi"}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "chat", "id": "x" * 65, "data": {"text": "hi"}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "chat", "id": "a", "data": {"text": "   "}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "chat", "id": "a", "data": {"text": "x" * 2001}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "chat", "id": "a", "data": "hi"}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "chat", "id": "a", "data": {"text": "hi", "colour": "red"}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "viewport", "id": "a", "data": {**VIEWPORT, "layout": "3x3"}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "viewport", "id": "a", "data": {"layout": "1x2", "cells": VIEWPORT["cells"]}}, "bad_message"),
        (
            {"v": 1, "type": "viewport", "id": "a", "data": {"layout": "1x1", "cells": [{"series": "x", "image": 0}]}},
            protocol.BAD_MESSAGE,
        ),
        (
            {"v": 1, "type": "viewport", "id": "a", "data": {"layout": "1x1", "cells": [{"series": "1", "image": -1}]}},
            protocol.BAD_MESSAGE,
        ),
        (
            {
                "v": 1,
                "type": "viewport",
                "id": "a",
                "data": {"layout": "1x1", "cells": [{"series": "1", "image": 0, "zoom": 1e9}]},
            },
            protocol.BAD_MESSAGE,
        ),
        ({"v": 1, "type": "pointer", "data": {"series": "1.2", "image": 0, "x": "1", "y": 2}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "pointer", "data": {"series": "1.2", "image": True, "x": 1, "y": 2}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "mode", "id": "a", "data": {"mode": "chaos"}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "leader.grant", "id": "a", "data": {"to": "../x"}}, protocol.BAD_MESSAGE),
        (
            {
                "v": 1,
                "type": "annotation.create",
                "id": "a",
                "data": {"kind": "angle", "series": "1", "instance": "1.2", "points": [[0, 0], [1, 1]]},
            },
            protocol.BAD_MESSAGE,
        ),
        (
            {
                "v": 1,
                "type": "annotation.create",
                "id": "a",
                "data": {"kind": "blob", "series": "1", "instance": "1.2", "points": [[0, 0], [1, 1]]},
            },
            protocol.BAD_MESSAGE,
        ),
        ({"v": 1, "type": "annotation.update", "id": "a", "data": {"annotation": "nope", "version": 1}}, "bad_message"),
        ({"v": 1, "type": "join", "data": {"resume": {"epoch": "", "seq": 3}}}, protocol.BAD_MESSAGE),
        ({"v": 1, "type": "sync", "data": {"seq": -1}}, protocol.BAD_MESSAGE),
    ],
)
def test_bad_messages_are_refused_with_a_code(body: object, code: str) -> None:
    error = refused(body)  # type: ignore[arg-type]
    assert error.code == code
    assert error.message


def test_a_refusal_names_the_message_it_refuses() -> None:
    error = refused({"v": 1, "type": "chat", "id": "c-7", "data": {"text": ""}})
    assert error.message_id == "c-7"
    assert "text" in error.message


def test_oversize_frames_are_refused_before_parsing() -> None:
    text = json.dumps({"v": 1, "type": "chat", "id": "a", "data": {"text": "가" * 6000}}, ensure_ascii=False)
    assert len(text) < LIMIT < len(text.encode())
    error = refused(text)
    assert error.code == protocol.TOO_LARGE


def test_a_number_is_inserted_without_encoding_twice() -> None:
    text = protocol.encode(protocol.envelope("chat", {"text": "판독"}, sender="abc", user=3, message_id="m1"))
    numbered = json.loads(protocol.with_seq(text, 41))
    expected = {"seq": 41, "v": 1, "type": "chat", "from": "abc", "user": 3, "id": "m1", "data": {"text": "판독"}}
    assert numbered == expected


def test_the_document_lists_exactly_the_types_codes_and_close_codes_of_the_module() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "coreading.md").read_text(encoding="utf-8")
    for kind in protocol.CLIENT_TYPES + protocol.SERVER_TYPES:
        assert f"`{kind}`" in doc, kind
    for code in protocol.ERROR_CODES:
        assert re.search(rf"^\| `{re.escape(code)}` \|", doc, re.MULTILINE), code
    for close in protocol.CLOSE_CODES:
        assert re.search(rf"^\| {close} \|", doc, re.MULTILINE), close
    sequenced = re.search(r"Sequenced types: (.*?)\.\n", doc, re.DOTALL)
    assert sequenced is not None
    assert re.findall(r"`([a-z.]+)`", sequenced.group(1)) == list(protocol.SEQUENCED_TYPES)


def test_an_empty_cell_has_series_null_and_the_default_view() -> None:
    cells = [{"series": "1.2.3", "image": 7}, {"series": None}, {"series": None, "image": 0}, {"series": None}]
    message = parse({"v": 1, "type": "viewport", "id": "a", "data": {"layout": "2x2", "active": 0, "cells": cells}})
    empty = message.data["cells"][1]
    assert empty["series"] is None and empty["image"] == 0 and empty["zoom"] == 1.0 and empty["pan"] == [0.0, 0.0]
    assert [cell["series"] for cell in message.data["cells"]] == ["1.2.3", None, None, None]


@pytest.mark.parametrize(
    ("cell", "field"),
    [
        ({"series": None, "image": 3}, "cells[0].image"),  # an empty cell shows no image
        ({"image": 0}, "cells[0].series"),  # series must be said, even when empty
    ],
)
def test_an_empty_cell_is_said_explicitly_and_shows_no_image(cell: dict[str, object], field: str) -> None:
    error = refused({"v": 1, "type": "viewport", "id": "a", "data": {"layout": "1x1", "cells": [cell]}})
    assert error.code == protocol.BAD_MESSAGE
    assert field in error.message


def test_pan_and_pointer_are_image_pixels_that_may_fall_outside_the_image() -> None:
    cell = {"series": "1.2.3", "image": 0, "zoom": 2, "pan": [-12.25, 300.5]}
    viewport = parse({"v": 1, "type": "viewport", "id": "a", "data": {"layout": "1x1", "cells": [cell]}})
    assert viewport.data["cells"][0]["pan"] == [-12.25, 300.5]
    pointer = parse({"v": 1, "type": "pointer", "data": {"series": "1.2.3", "image": 0, "x": -3.5, "y": 512.5}})
    assert pointer.data == {"series": "1.2.3", "image": 0, "x": -3.5, "y": 512.5}


def test_annotation_frames_are_counted_from_zero() -> None:
    fields = {"kind": "length", "series": "1.2", "instance": "1.2.3", "points": [[0, 0], [1, 1]]}
    assert parse({"v": 1, "type": "annotation.create", "id": "a", "data": fields}).data["frame"] == 0
    first = parse({"v": 1, "type": "annotation.create", "id": "a", "data": {**fields, "frame": 0}})
    assert first.data["frame"] == 0
    error = refused({"v": 1, "type": "annotation.create", "id": "a", "data": {**fields, "frame": -1}})
    assert error.code == protocol.BAD_MESSAGE and "frame" in error.message
