"""The co-reading message protocol: the one module that says what a message is.

Every websocket frame is one JSON object. Clients send::

    {"v": 1, "type": "<kind>", "id": "<client message id>", "data": {...}}

and the server sends::

    {"v": 1, "type": "<kind>", "seq": 42, "from": "<connection>", "user": 7, "id": "<client id>", "data": {...}}

``seq`` (the server sequence number) is on every message that changes the
room's state; clients apply those in ``seq`` order. docs/coreading.md is the
reference for people; this module is the reference for code, and the two
must say the same (``coreading/tests/test_protocol.py`` checks the lists
of types and codes).

Nothing here touches the database, the channel layer or Redis: parsing and
validation are pure functions, so the consumer's hot path (viewport and
pointer messages) costs one ``json.loads`` and a few comparisons.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

VERSION = 1

# --- Message kinds ---------------------------------------------------------------

# What a client may send.
CLIENT_TYPES = (
    "join",
    "sync",
    "ping",
    "mode",
    "viewport",
    "pointer",
    "leader.request",
    "leader.grant",
    "annotation.create",
    "annotation.update",
    "annotation.delete",
    "chat",
)
# What the server sends. Sequenced kinds carry "seq" and are kept in the replay log.
SEQUENCED_TYPES = (
    "presence.joined",
    "presence.left",
    "presence.updated",
    "leader.changed",
    "viewport",
    "annotation.created",
    "annotation.updated",
    "annotation.deleted",
    "chat",
)
# Sent without "seq": transient (pointer, leader.requested), final (room.closed) or to one connection only.
UNSEQUENCED_TYPES = ("snapshot", "resumed", "pointer", "leader.requested", "room.closed", "ack", "error", "pong")
SERVER_TYPES = SEQUENCED_TYPES + UNSEQUENCED_TYPES

# Client kinds that need a client message id (their resends must be idempotent).
ID_REQUIRED = frozenset(
    {"mode", "viewport", "leader.grant", "annotation.create", "annotation.update", "annotation.delete", "chat"}
)
# Client kinds allowed before "join".
BEFORE_JOIN = frozenset({"join", "ping"})

# --- Error codes (in "error" messages; the socket stays open) --------------------------

BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
UNSUPPORTED_VERSION = "unsupported_version"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
NOT_JOINED = "not_joined"
NOT_LEADER = "not_leader"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
ROOM_CLOSED = "room_closed"
UNAVAILABLE = "unavailable"
ERROR_CODES = (
    BAD_JSON,
    BAD_MESSAGE,
    UNKNOWN_TYPE,
    UNSUPPORTED_VERSION,
    TOO_LARGE,
    RATE_LIMITED,
    NOT_JOINED,
    NOT_LEADER,
    NOT_FOUND,
    CONFLICT,
    ROOM_CLOSED,
    UNAVAILABLE,
)

# --- Close codes (the server ends the connection) --------------------------------------

# Access ended while connected (consultation or grant ended, account or role
# switched off, removed from the room). Same code as /ws/events/. Do not reconnect.
CLOSE_ACCESS_ENDED = 4403
# Not signed in, no such room, or not allowed in it: unknown and forbidden look alike.
CLOSE_NOT_FOUND = 4404
# No "join" within the join timeout. Reconnect and send "join" first.
CLOSE_JOIN_TIMEOUT = 4408
# The room was closed (its consultation ended, or its owner closed it). Do not reconnect.
CLOSE_ROOM_CLOSED = 4410
# The shared store (Redis) is unreachable. Show "reconnecting" and reconnect with backoff.
CLOSE_UNAVAILABLE = 4503
CLOSE_CODES = (CLOSE_ACCESS_ENDED, CLOSE_NOT_FOUND, CLOSE_JOIN_TIMEOUT, CLOSE_ROOM_CLOSED, CLOSE_UNAVAILABLE)
# After these the client must not reconnect on its own.
FINAL_CLOSE_CODES = (CLOSE_ACCESS_ENDED, CLOSE_NOT_FOUND, CLOSE_ROOM_CLOSED)

# --- Shapes ------------------------------------------------------------------------------

LAYOUTS = {"1x1": 1, "1x2": 2, "2x2": 4}
MODES = ("follow", "free")
ANNOTATION_POINTS = {"length": 2, "arrow": 2, "angle": 3, "ellipse": 2, "rectangle": 2}
ANNOTATION_KINDS = tuple(ANNOTATION_POINTS)
MAX_TEXT = 2000  # chat message, characters
MAX_LABEL = 200  # annotation text, characters
MAX_COORDINATE = 1_000_000.0
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_UID = re.compile(r"^[0-9.]{1,64}$")
_CONNECTION = re.compile(r"^[A-Za-z0-9]{1,32}$")
_ANNOTATION_ID = re.compile(r"^[0-9a-f-]{32,36}$")


class ProtocolError(Exception):
    """A message the server refuses: answered with an "error" to its sender only."""

    def __init__(self, code: str, message: str, message_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_id = message_id


@dataclass(frozen=True)
class ClientMessage:
    type: str
    id: str | None
    data: dict[str, Any] = field(default_factory=dict)


def encode(message: dict[str, Any]) -> str:
    """Compact JSON, UTF-8 text as is (Korean chat stays readable and short)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def parse(text: str | None, *, max_bytes: int) -> ClientMessage:
    """One client frame → a validated message, or ProtocolError."""
    if text is None:
        raise ProtocolError(BAD_MESSAGE, _("Send text frames with JSON, not binary frames."))
    # Characters ≤ bytes ≤ 4 × characters: the cheap test first.
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes):
        raise ProtocolError(TOO_LARGE, _("The message is larger than %(limit)d bytes.") % {"limit": max_bytes})
    try:
        raw = json.loads(text)
    except ValueError:
        raise ProtocolError(BAD_JSON, _("The message is not valid JSON.")) from None
    if not isinstance(raw, dict):
        raise ProtocolError(BAD_MESSAGE, _("A message is a JSON object."))
    message_id = raw.get("id")
    if message_id is not None and not (isinstance(message_id, str) and _CLIENT_ID.match(message_id)):
        raise ProtocolError(BAD_MESSAGE, _("The message id must be 1 to 64 letters, digits or the characters _ . : -"))
    if raw.get("v") != VERSION:
        raise ProtocolError(
            UNSUPPORTED_VERSION,
            _("This server speaks co-reading protocol version %(version)d; reload the page.") % {"version": VERSION},
            message_id,
        )
    kind = raw.get("type")
    if kind not in CLIENT_TYPES:
        raise ProtocolError(UNKNOWN_TYPE, _("Unknown message type."), message_id)
    if message_id is None and kind in ID_REQUIRED:
        raise ProtocolError(BAD_MESSAGE, _("This message needs an id."), None)
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, _("“data” must be a JSON object."), message_id)
    try:
        clean = _VALIDATORS[kind](data)
    except _Invalid as invalid:
        raise ProtocolError(BAD_MESSAGE, invalid.message, message_id) from None
    return ClientMessage(type=kind, id=message_id, data=clean)


# --- Validation of each kind's data -----------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _number(value: Any, name: str, low: float = -MAX_COORDINATE, high: float = MAX_COORDINATE) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(_("“%(name)s” must be a number.") % {"name": name})
    if not low <= value <= high:
        raise _Invalid(_("“%(name)s” must be between %(low)s and %(high)s.") % {"name": name, "low": low, "high": high})
    return float(value)


def _integer(value: Any, name: str, low: int = 0, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Invalid(
            _("“%(name)s” must be a whole number from %(low)d to %(high)d.") % {"name": name, "low": low, "high": high}
        )
    return value


def _uid(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _UID.match(value):
        raise _Invalid(_("“%(name)s” must be a DICOM UID.") % {"name": name})
    return value


def _text(value: Any, name: str, limit: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _Invalid(_("“%(name)s” must be text.") % {"name": name})
    value = value.strip()
    if required and not value:
        raise _Invalid(_("“%(name)s” is empty.") % {"name": name})
    if len(value) > limit:
        raise _Invalid(_("“%(name)s” is longer than %(limit)d characters.") % {"name": name, "limit": limit})
    return value


def _only(data: dict[str, Any], *allowed: str) -> None:
    extra = set(data) - set(allowed)
    if extra:
        raise _Invalid(_("Unexpected field “%(field)s”.") % {"field": sorted(extra)[0]})


def _empty(data: dict[str, Any]) -> dict[str, Any]:
    _only(data)
    return {}


def _join(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "resume", "mode")
    clean: dict[str, Any] = {"mode": _mode_value(data.get("mode", "follow"))}
    resume = data.get("resume")
    if resume is not None:
        if not isinstance(resume, dict):
            raise _Invalid(_("“resume” must be an object with “epoch” and “seq”."))
        _only(resume, "epoch", "seq")
        epoch = resume.get("epoch")
        if not isinstance(epoch, str) or not 0 < len(epoch) <= 64:
            raise _Invalid(_("“resume.epoch” must be the epoch of the last snapshot."))
        clean["resume"] = {"epoch": epoch, "seq": _integer(resume.get("seq"), "resume.seq", 0, 2**53)}
    return clean


def _sync(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "seq")
    return {"seq": _integer(data.get("seq"), "seq", 0, 2**53)}


def _mode_value(value: Any) -> str:
    if value not in MODES:
        raise _Invalid(_("“mode” must be “follow” or “free”."))
    return str(value)


def _mode(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "mode")
    return {"mode": _mode_value(data.get("mode"))}


def _cell(value: Any, index: int) -> dict[str, Any]:
    name = f"cells[{index}]"
    if not isinstance(value, dict):
        raise _Invalid(_("“%(name)s” must be an object.") % {"name": name})
    _only(value, "series", "image", "window", "zoom", "pan", "rotation", "flip", "invert")
    # An empty cell (a layout with more cells than the study has series) has "series": null and image 0.
    if "series" not in value:
        raise _Invalid(_("“%(name)s.series” is missing (a series UID, or null for an empty cell).") % {"name": name})
    series = value["series"]
    if series is None:
        if value.get("image", 0) != 0 or isinstance(value.get("image"), bool):
            raise _Invalid(_("“%(name)s.image” must be 0 in an empty cell (series null).") % {"name": name})
        image = 0
    else:
        series = _uid(series, f"{name}.series")
        image = _integer(value.get("image"), f"{name}.image", 0, 100_000)
    cell: dict[str, Any] = {
        "series": series,
        "image": image,
        "zoom": _number(value.get("zoom", 1.0), f"{name}.zoom", 0.01, 100.0),
        "rotation": _number(value.get("rotation", 0), f"{name}.rotation", 0, 360),
        "invert": bool(value.get("invert", False)),
    }
    window = value.get("window")
    if window is None:
        cell["window"] = None
    elif isinstance(window, dict):
        _only(window, "center", "width")
        cell["window"] = {
            "center": _number(window.get("center"), f"{name}.window.center"),
            "width": _number(window.get("width"), f"{name}.window.width", 0.0001),
        }
    else:
        raise _Invalid(_("“%(name)s.window” must be null or {center, width}.") % {"name": name})
    pan = value.get("pan", [0, 0])
    if not isinstance(pan, list) or len(pan) != 2:
        raise _Invalid(_("“%(name)s.pan” must be [x, y].") % {"name": name})
    cell["pan"] = [_number(pan[0], f"{name}.pan[0]"), _number(pan[1], f"{name}.pan[1]")]
    flip = value.get("flip", {"h": False, "v": False})
    if not isinstance(flip, dict):
        raise _Invalid(_("“%(name)s.flip” must be {h, v}.") % {"name": name})
    _only(flip, "h", "v")
    cell["flip"] = {"h": flip.get("h") is True, "v": flip.get("v") is True}
    return cell


def _viewport(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "layout", "active", "cells")
    layout = data.get("layout")
    if layout not in LAYOUTS:
        raise _Invalid(_("“layout” must be one of %(layouts)s.") % {"layouts": ", ".join(LAYOUTS)})
    cells = data.get("cells")
    if not isinstance(cells, list) or len(cells) != LAYOUTS[layout]:
        raise _Invalid(_("Layout %(layout)s has %(count)d cells.") % {"layout": layout, "count": LAYOUTS[layout]})
    return {
        "layout": layout,
        "active": _integer(data.get("active", 0), "active", 0, LAYOUTS[layout] - 1),
        "cells": [_cell(cell, index) for index, cell in enumerate(cells)],
    }


def _pointer(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("hidden") is True:
        _only(data, "hidden")
        return {"hidden": True}
    _only(data, "series", "image", "x", "y")
    return {
        "series": _uid(data.get("series"), "series"),
        "image": _integer(data.get("image"), "image", 0, 100_000),
        "x": _number(data.get("x"), "x"),
        "y": _number(data.get("y"), "y"),
    }


def _connection(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _CONNECTION.match(value):
        raise _Invalid(_("“%(name)s” must be a participant's connection id.") % {"name": name})
    return value


def _grant(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "to")
    return {"to": _connection(data.get("to"), "to")}


def _points(value: Any, kind: str) -> list[list[float]]:
    count = ANNOTATION_POINTS[kind]
    if not isinstance(value, list) or len(value) != count:
        raise _Invalid(_("A %(kind)s has %(count)d points [x, y].") % {"kind": kind, "count": count})
    points = []
    for index, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            raise _Invalid(_("Each point is [x, y]."))
        points.append([_number(point[0], f"points[{index}][0]"), _number(point[1], f"points[{index}][1]")])
    return points


def _annotation_id(value: Any) -> str:
    if not isinstance(value, str) or not _ANNOTATION_ID.match(value):
        raise _Invalid(_("“annotation” must be the id of an annotation."))
    return value


def _annotation_create(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "kind", "series", "instance", "frame", "points", "text")
    kind = data.get("kind")
    if kind not in ANNOTATION_POINTS:
        raise _Invalid(_("“kind” must be one of %(kinds)s.") % {"kinds": ", ".join(ANNOTATION_KINDS)})
    return {
        "kind": kind,
        "series": _uid(data.get("series"), "series"),
        "instance": _uid(data.get("instance"), "instance"),
        "frame": _integer(data.get("frame", 0), "frame", 0, 100_000),
        "points": _points(data.get("points"), kind),
        "text": _text(data.get("text"), "text", MAX_LABEL, required=False),
    }


def _annotation_update(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "annotation", "version", "points", "text")
    clean: dict[str, Any] = {
        "annotation": _annotation_id(data.get("annotation")),
        "version": _integer(data.get("version"), "version", 1, 2**31),
    }
    if "points" in data:
        clean["points"] = data["points"]  # checked against the annotation's kind by the consumer
        if not isinstance(data["points"], list):
            raise _Invalid(_("Each point is [x, y]."))
    if "text" in data:
        clean["text"] = _text(data.get("text"), "text", MAX_LABEL, required=False)
    if "points" not in clean and "text" not in clean:
        raise _Invalid(_("Say what changes: “points”, “text” or both."))
    return clean


def annotation_points(value: Any, kind: str, message_id: str | None = None) -> list[list[float]]:
    """Validate *value* as the points of an annotation of *kind* (ProtocolError if not)."""
    try:
        return _points(value, kind)
    except _Invalid as invalid:
        raise ProtocolError(BAD_MESSAGE, invalid.message, message_id) from None


def _annotation_delete(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "annotation")
    return {"annotation": _annotation_id(data.get("annotation"))}


def _chat(data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "text")
    return {"text": _text(data.get("text"), "text", MAX_TEXT, required=True)}


_VALIDATORS = {
    "join": _join,
    "sync": _sync,
    "ping": _empty,
    "mode": _mode,
    "viewport": _viewport,
    "pointer": _pointer,
    "leader.request": _empty,
    "leader.grant": _grant,
    "annotation.create": _annotation_create,
    "annotation.update": _annotation_update,
    "annotation.delete": _annotation_delete,
    "chat": _chat,
}
assert set(_VALIDATORS) == set(CLIENT_TYPES)


# --- Building server messages ----------------------------------------------------------------


def error(code: str, message: str, message_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": VERSION, "type": "error", "data": {"code": code, "message": message, **extra}}
    if message_id is not None:
        body["id"] = message_id
    return body


def envelope(
    kind: str,
    data: dict[str, Any],
    *,
    sender: str | None = None,
    user: int | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A server message without "seq" (the store adds it to sequenced kinds)."""
    body: dict[str, Any] = {"v": VERSION, "type": kind}
    if sender is not None:
        body["from"] = sender
    if user is not None:
        body["user"] = user
    if message_id is not None:
        body["id"] = message_id
    body["data"] = data
    return body


def with_seq(text: str, seq: int) -> str:
    """Insert ``"seq": N`` at the front of an encoded message (no second json.dumps)."""
    return f'{{"seq":{seq},{text[1:]}'
