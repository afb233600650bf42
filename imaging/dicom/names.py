"""Person names (DICOM PN) for display and search.

A PN value has up to three component groups separated by "=": alphabetic,
ideographic and phonetic, each "family^given^middle^prefix^suffix". Korean
files often carry "Hong^Gildong=洪^吉洞=홍^길동".
"""

from __future__ import annotations

import re
import unicodedata

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _group_text(group: str) -> str:
    parts = [part.strip() for part in group.split("^")]
    family, given = [*parts, "", ""][:2]
    if _HANGUL.search(group) or re.search(r"[\u4e00-\u9fff]", group):
        # Korean and Chinese-character names are written family+given, no space.
        return f"{family}{given}".strip()
    return " ".join(part for part in (given, family) if part) if given and family else (family or given)


def display_person_name(value: str) -> str:
    """The name as a Korean reader expects it: Hangul first, romanised in brackets."""
    if not value:
        return ""
    groups = [group for group in value.split("=")]
    texts = [_group_text(group) for group in groups]
    hangul = next((text for text in texts if _HANGUL.search(text)), "")
    alphabetic = texts[0] if texts else ""
    if hangul and alphabetic and alphabetic != hangul:
        return f"{hangul} ({alphabetic})"
    return hangul or next((text for text in texts if text), "")


def fold_for_search(value: str) -> str:
    """Case- and width-insensitive form used for name matching."""
    return unicodedata.normalize("NFKC", value).casefold()
