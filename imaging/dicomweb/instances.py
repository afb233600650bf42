"""One stored instance by its UIDs, for the per-frame requests: read from the database once per process.

The viewer fetches every frame of a series as its own request (frames,
rendered, thumbnails). What those requests need of an instance never changes
after ingest: its storage key carries the content hash, and its size, digest,
transfer syntax, frame count, rows and columns come from that file. So it is
read once and kept in a bounded in-process cache.

The cache is asked only after the access check of the request has found the
study (``imaging.access.find_study``), and its keys start with that study: it
is never a way around the check. The study's creation time is in the key
too, which keeps keys apart where primary keys are reused (test databases).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from django.http import Http404

from imaging.access import StudyKey
from imaging.models import Instance

CACHE_SIZE = 20_000  # a few hundred bytes each: some MB for the series a process is serving
FIELDS = (
    "id",
    "series__series_instance_uid",
    "sop_instance_uid",
    "storage_key",
    "size",
    "sha256",
    "transfer_syntax_uid",
    "number_of_frames",
    "rows",
    "columns",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """The columns of an instance that never change after ingest."""

    pk: int
    series_instance_uid: str
    sop_instance_uid: str
    storage_key: str
    size: int
    sha256: str
    transfer_syntax_uid: str
    number_of_frames: int
    rows: int | None
    columns: int | None
    created_at: datetime

    @classmethod
    def of(cls, instance: Instance) -> StoredInstance:
        """From a model instance read with its series (``select_related("series")``)."""
        return cls(
            instance.pk,
            instance.series.series_instance_uid,
            instance.sop_instance_uid,
            instance.storage_key,
            instance.size,
            instance.sha256,
            instance.transfer_syntax_uid,
            instance.number_of_frames,
            instance.rows,
            instance.columns,
            instance.created_at,
        )


_cache: OrderedDict[tuple[int, datetime, str, str], StoredInstance] = OrderedDict()
_lock = threading.Lock()


def stored_instance(study: StudyKey, series_uid: str, sop_uid: str) -> StoredInstance:
    """The instance *sop_uid* of series *series_uid* in the visible *study*, or Http404."""
    key = (study.pk, study.created_at, series_uid, sop_uid)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    row = (
        Instance.objects.filter(study_id=study.pk, series__series_instance_uid=series_uid, sop_instance_uid=sop_uid)
        .values_list(*FIELDS)
        .first()
    )
    if row is None:
        raise Http404("No such series or instance")
    found = StoredInstance(*row)
    with _lock:
        _cache[key] = found
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return found
