"""The DICOM JSON model (PS3.18 F.2): attribute tags, values, person names.

Django-free: QIDO-RS builds its answers from index columns with these
helpers, STOW-RS its response dataset. Tags are written as eight upper-case
hex digits, values always as arrays, person names as objects with their
Alphabetic, Ideographic and Phonetic component groups, and the answer is
UTF-8 JSON (Korean names stay readable, not ``\\uXXXX``-escaped).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

DicomJson = dict[str, dict[str, Any]]

_HEX_TAG = re.compile(r"^[0-9A-Fa-f]{8}$")
PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")


class UnknownAttribute(ValueError):
    """A query named an attribute that is neither a DICOM keyword nor a tag."""


def tag_of(key: str) -> str:
    """The eight-hex-digit tag of an attribute given by keyword (``PatientName``) or tag (``00100010``).

    Raises
    ------
    UnknownAttribute
        If *key* is neither.
    """
    key = key.strip()
    if _HEX_TAG.match(key):
        return key.upper()
    tag = tag_for_keyword(key)
    if tag is None:
        raise UnknownAttribute(key)
    return f"{tag:08X}"


def keyword_of(tag: str) -> str:
    return keyword_for_tag(int(tag, 16)) or tag


@functools.lru_cache(maxsize=4096)
def vr_of(tag: str) -> str:
    try:
        vr = dictionary_VR(int(tag, 16))
    except KeyError:
        return "UN"
    # Ambiguous VRs ("US or SS", "OB or OW"): the first is right for the values we write.
    return vr.split(" ")[0]


def person_name(value: str) -> dict[str, str]:
    """A PN value (``Hong^Gildong=洪^吉洞=홍^길동``) as its DICOM JSON object."""
    return dict(_person_name(value))


@functools.lru_cache(maxsize=8192)
def _person_name(value: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, group) for name, group in zip(PN_GROUPS, value.split("="), strict=False) if group)


def da(value: date | None) -> str | None:
    return value.strftime("%Y%m%d") if value else None


def element(tag: str, value: Any, vr: str | None = None) -> dict[str, Any]:
    """One attribute: ``{"vr": …, "Value": […]}``, without Value when *value* is empty.

    *value* may be a single value or a list; PN strings become PN objects,
    backslash-separated strings of multi-valued code strings are split.
    """
    vr = vr or vr_of(tag)
    if value is None or value == "" or value == []:
        return {"vr": vr}
    values = value if isinstance(value, list | tuple) else [value]
    if vr == "PN":
        values = [person_name(v) if isinstance(v, str) else v for v in values]
        values = [v for v in values if v]
        return {"vr": vr, "Value": values} if values else {"vr": vr}
    if vr in ("IS", "SL", "SS", "UL", "US", "SV", "UV") and not isinstance(value, list | tuple):
        values = [int(value)]
    return {"vr": vr, "Value": list(values)}


def dataset(items: Iterable[tuple[str, Any]] | dict[str, Any]) -> DicomJson:
    """A DICOM JSON object from (tag, value) pairs, sorted by tag as PS3.18 asks."""
    pairs = items.items() if isinstance(items, dict) else items
    return {tag: element(tag, value) for tag, value in sorted(pairs)}


def sequence(items: list[DicomJson]) -> dict[str, Any]:
    return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}


def dumps(data: object) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
