"""Helpers for the few queries written as SQL (where the ORM's own cost outweighs the query)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime


def aware_datetime(value: datetime | str) -> datetime:
    """A timestamp column read without the ORM, as the ORM gives it: aware (SQLite hands back UTC text)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a timestamp: {value!r}")
        value = parsed
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
