"""Content negotiation for DICOMweb: the one place ``Accept`` headers are read.

PS3.18 8.7 lets a client ask for single-part (``application/dicom+json``) or
multipart (``multipart/related; type="application/dicom"; transfer-syntax=…``)
representations, with quality values, and in an ``accept`` query parameter
as well as the header. :func:`parse_accept` turns all of that into a list of
:class:`MediaRange` in order of preference; each resource offers what it can
make and :func:`choose` picks, or the view answers 406.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.http import HttpRequest

MULTIPART = "multipart/related"
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
JSON = "application/json"
OCTET_STREAM = "application/octet-stream"

# Transfer syntaxes whose frames are sent as a compressed bitstream, and the
# media type PS3.18 Table 8.7.3-2 gives each.
COMPRESSED_FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"


class NotAcceptable(Exception):
    """No representation the client accepts can be made (HTTP 406)."""

    def __init__(self, offered: Iterable[str]) -> None:
        self.offered = list(offered)
        super().__init__("acceptable: " + ", ".join(self.offered))


def _split_params(text: str) -> list[str]:
    """Split on ``;`` outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _split_ranges(text: str) -> list[str]:
    """Split on ``,`` outside quotes."""
    ranges: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            ranges.append("".join(current))
            current = []
        else:
            current.append(char)
    ranges.append("".join(current))
    return [r.strip() for r in ranges if r.strip()]


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``multipart/related; type="application/dicom"; transfer-syntax=*``."""

    media_type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    @property
    def is_multipart(self) -> bool:
        return self.media_type == MULTIPART

    @property
    def part_type(self) -> str:
        """The media type of the parts (for multipart) or of the body."""
        return self.params.get("type", "*/*").lower() if self.is_multipart else self.media_type

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")

    def matches(self, media_type: str) -> bool:
        """Does the range (``*/*``, ``image/*``, ``image/jpeg``) admit *media_type*?"""
        pattern = self.part_type
        if pattern in ("*/*", "*"):
            return True
        if pattern.endswith("/*"):
            return media_type.split("/")[0] == pattern[:-2]
        return pattern == media_type

    def admits_syntax(self, syntax: str, default: str | None) -> bool:
        """Does the range allow *syntax*? Without a transfer-syntax parameter, only *default* (None: any)."""
        wanted = self.transfer_syntax
        if wanted is None:
            return default is None or syntax == default
        return wanted == "*" or wanted == syntax


def parse_accept(text: str) -> list[MediaRange]:
    """Media ranges in order of preference (q, then order given); ``*/*`` when empty."""
    ranges: list[tuple[float, int, MediaRange]] = []
    for position, raw in enumerate(_split_ranges(text or "*/*")):
        head, *raw_params = _split_params(raw)
        params: dict[str, str] = {}
        q = 1.0
        for raw_param in raw_params:
            name, _sep, value = raw_param.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"')
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            elif name:
                params[name] = value
        media_type = head.lower()
        if q > 0 and media_type:
            ranges.append((-q, position, MediaRange(media_type, params, q)))
    ranges.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in ranges] or [MediaRange("*/*")]


def request_accept(request: HttpRequest) -> list[MediaRange]:
    """The ranges of the ``accept`` query parameter (PS3.18 8.3.3.1) or else the Accept header."""
    values = request.GET.getlist("accept")
    if values:
        return parse_accept(",".join(values))
    return parse_accept(request.META.get("HTTP_ACCEPT", ""))


def choose(ranges: Sequence[MediaRange], offers: Sequence[str], *, multipart: bool | None = None) -> str:
    """The first of *offers* (single-part media types) the client accepts, in the client's order.

    ``multipart`` restricts to multipart ranges (True), single-part ranges
    (False) or either (None). Raises :class:`NotAcceptable`.
    """
    for media_range in ranges:
        if multipart is not None and media_range.is_multipart != multipart and media_range.media_type != "*/*":
            continue
        for offer in offers:
            if media_range.matches(offer):
                return offer
    raise NotAcceptable(offers)


def wants_json(ranges: Sequence[MediaRange]) -> str:
    """``application/dicom+json`` or ``application/json`` for QIDO and metadata answers, else 406."""
    return choose(ranges, [DICOM_JSON, JSON], multipart=False)


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    """A Content-Type header as (media type, parameters)."""
    head, *raw_params = _split_params(value or "")
    params: dict[str, str] = {}
    for raw_param in raw_params:
        name, _sep, param = raw_param.partition("=")
        params[name.strip().lower()] = param.strip().strip('"')
    return head.strip().lower(), params
