"""The one ingest path. Every entry point — web upload, REST API, STOW-RS,
C-STORE, the import command — hands files to an :class:`IngestSession` and
gets one :class:`IngestResult` per file back.

For each file: check the size → parse and validate the header → hash →
store the original bytes atomically and durably and index them, in one
transaction committed only once the bytes are durable; an instance stored
before makes the file a duplicate (same bytes: success, the stored file
untouched) or a conflict (other bytes: the new ones are not kept). One by
one, the index INSERT itself finds such an instance (``ON CONFLICT DO
NOTHING``), before the file is stored; a batch asks for all of its files with
one query before it stores them. When the session closes, preview rendering is
scheduled for what was stored (after the transaction commits), the owning
institution's pages are told, and the audit trail gets one event per study.

One by one or in batches
------------------------
By default (C-STORE, where each instance is acknowledged on its own) every
file is on disk (fsync) and indexed before ``add_file`` returns: its row is
written while the disk finishes the file, and committed after. A session
with ``batch_size`` (STOW-RS, web and API uploads) stages up to that many
files — bytes written, their fsync running in background threads while the
next file is parsed — and then, in :meth:`IngestSession.flush`, waits until
all of them are durable, puts them in place and indexes them in one
transaction. Nothing is indexed before its bytes are durable, and nothing is
reported before it is indexed: callers read the results after ``close()``
(or ``flush()``); until then a staged file's result says "stored"
provisionally. If the batch transaction fails (say, another upload inserted
the same SOP Instance UID at the same moment), it is rolled back and every
file of the batch is indexed on its own, exactly as without batches, so that
file ends as a duplicate or conflict and the rest still go in.

Acknowledged first, indexed next (C-STORE)
------------------------------------------
A session with ``acknowledge_early`` (the DICOM SCP's) answers for an instance
of a series it has indexed an instance of already before indexing it: once
the file is durable at its key and the instance is new (neither the index, as
read when the session met the series, nor this session holds its SOP Instance
UID; a resend is a duplicate or a conflict, answered at once). Its row
follows a moment later in :meth:`IngestSession.index_acknowledged`, in a
thread beside the association that indexes what it was given in batches of up
to :data:`ACKNOWLEDGED_BATCH` with one INSERT (on SQLite, which takes one
writer at a time, right after the answer). The first instance of every series
and anything unusual still go the one-by-one way above, so a study filed
under another patient is still refused before the answer. Before its first
such answer for a series the session writes an :class:`imaging.models.IngestJournal`
row, touched while it goes on and removed when it closes with every
instance indexed (closing waits for the thread). If the process dies in
between, the row goes stale and :func:`recover_acknowledged` (run by
``dicom_scp`` and ``cleanup_storage``) indexes the series' files that have no
row. An instance whose SOP Instance UID another sender stored at the same
moment is found by the INSERT: identical, it stays stored; different, it is
logged and counted as a conflict although it was acknowledged, and its bytes
are removed.

A crash between storing and indexing leaves a file that no index row points
to; nobody can see it, and ``manage.py cleanup_storage`` finds and removes
it (unless a stale journal row says it was acknowledged: then it is indexed).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, partial
from pathlib import Path
from types import TracebackType
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count, F, Field, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from clinicnet.audit.services import audit_record
from imaging import storage
from imaging.dicom.header import DicomDirectory, Header, InvalidDicom, parse_header
from imaging.dicom.names import fold_for_search
from imaging.models import IngestJournal, Instance, Patient, Series, Study
from institutions.models import Institution, User

logger = logging.getLogger(__name__)


# Files per index transaction for uploads of many files at once (STOW-RS, web and API uploads, imports).
UPLOAD_BATCH = 50
# Files up to this size are parsed from memory (read whole, or joined from pieces by
# add_bytes: a copy, and as much memory again); larger ones from disk.
JOIN_UP_TO_BYTES = 64 * 1024 * 1024
# Acknowledged instances indexed with one INSERT at most, and how long the first
# of them waits for the rest while the sender goes on (see the module docstring).
ACKNOWLEDGED_BATCH = 20
ACKNOWLEDGED_LINGER_SECONDS = 0.05
# A session touches its journal rows this often while it acknowledges; a row left
# untouched for JOURNAL_STALE_AFTER belongs to a session that is gone.
JOURNAL_TOUCH_SECONDS = 30
JOURNAL_STALE_AFTER = timedelta(minutes=2)


class EntryPoint:
    WEB = "web"
    API = "api"
    STOW = "stow-rs"
    DIMSE = "dimse"
    IMPORT = "import"


class Outcome:
    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    SKIPPED = "skipped"


@dataclass
class IngestResult:
    """What happened to one file. ``reason`` is for people; empty when stored."""

    name: str
    outcome: str
    reason: str = ""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    instance_id: int | None = None
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.STORED, Outcome.DUPLICATE)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "reason": self.reason,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "size": self.size,
        }


class IndexConflict(Exception):
    """The file contradicts what the index already holds (kept unchanged)."""


class _NotStored(Exception):
    """Storing a file failed (inside its index transaction, which is then rolled back)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class AlreadyIndexed(Exception):
    """The index holds this SOP Instance UID for the institution already; nothing was inserted."""


@dataclass
class _Staged:
    """A file of a batch whose bytes are staged, waiting for :meth:`IngestSession.flush`."""

    result: IngestResult
    header: Header
    key: str
    size: int
    sha256: str


@dataclass
class _Acknowledged:
    """An instance answered for before it is indexed: durable at *key*, waiting for its row."""

    result: IngestResult
    header: Header
    study: Study
    series_id: int
    key: str
    size: int
    sha256: str


def _display_size(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size} bytes"


@dataclass
class IngestSession:
    """A batch of files from one entry point, for one institution, by one actor.

    Use as a context manager; results accumulate in ``results``.
    """

    institution: Institution
    entry_point: str
    actor: User | None = None
    actor_label: str = ""
    request: HttpRequest | None = None
    address: str | None = None
    results: list[IngestResult] = field(default_factory=list)
    # 0: each file durable and indexed before add_file returns; N: in batches of N (see the module docstring).
    batch_size: int = 0
    _staged: list[_Staged] = field(default_factory=list)
    _staged_uids: set[str] = field(default_factory=set)
    _durable: storage.DurableBatch | None = None
    _stored_by_study: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    _touched_studies: dict[int, Study] = field(default_factory=dict)
    _audited: int = 0
    # Rows this session already found or made. The 2nd to 300th slice of a
    # study then costs one INSERT, not also three lookups, a row lock and two
    # counter UPDATEs in a transaction: on PostgreSQL each query is a round
    # trip, and round trips were most of the time of a C-STORE. The counters
    # of those studies and series are recounted when the session closes
    # (``_uncounted``). Patients, studies and series are never deleted; the
    # first instance of a study in a session, a new series or a new modality
    # still take the full, locked path.
    _patients: dict[tuple[str, str], int] = field(default_factory=dict)
    _studies: dict[str, Study] = field(default_factory=dict)
    _series: dict[tuple[int, str], int] = field(default_factory=dict)
    _uncounted: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    # Acknowledged first, indexed next (see the module docstring): C-STORE only.
    acknowledge_early: bool = False
    # SOP Instance UID → SHA-256 of each series' instances: indexed when the session
    # met the series, or acknowledged since.
    _known_in_series: dict[int, dict[str, str]] = field(default_factory=dict)
    # Series id → (its IngestJournal row, time.monotonic() of the last touch).
    _journal: dict[int, tuple[int, float]] = field(default_factory=dict)
    _indexer: _AcknowledgedIndexer | None = None
    # The next spool file, made in the background while this one is used (see _SpoolFiles).
    _spool: _SpoolFiles | None = None

    def __enter__(self) -> IngestSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- one file ---------------------------------------------------------

    def add_bytes(
        self, data: bytes | Sequence[bytes | memoryview], name: str = "", *, sha256: str | None = None
    ) -> IngestResult:
        """Ingest a file given as bytes, or as its consecutive pieces (written one after another)."""
        parts = [data] if isinstance(data, bytes) else list(data)
        # The header is parsed from memory (see read_dataset); pieces are joined for that
        # when it costs little, a large file's are written as they are and parsed from disk.
        whole: bytes | None = None
        if len(parts) == 1 and isinstance(parts[0], bytes):
            whole = parts[0]
        elif sum(len(part) for part in parts) <= JOIN_UP_TO_BYTES:
            whole = b"".join(parts)
        if whole is not None:
            parts = [whole]
        # Hashed from memory instead of reading the spool file back, and in a
        # background thread (hashlib lets go of the GIL) while the header is parsed.
        digest = storage.in_background(_sha256_hex, parts) if sha256 is None else sha256
        if self._spool is None:
            self._spool = _SpoolFiles()
        path, fd = self._spool.take()
        early: Future[None] | None = None
        try:
            _write_all(fd, parts)
            # The disk starts on the bytes now, while the header is parsed and the
            # index asked; the fsync that makes them durable then has less to wait for.
            early = storage.in_background(os.fsync, fd)
            return self.add_file(path, name=name, sha256=digest, data=whole)
        finally:
            # Neither thread may outlive the call: one uses the file, the other the caller's buffers.
            if early is not None:
                early.exception()
            if isinstance(digest, Future):
                digest.exception()
            os.close(fd)
            # Removing the name costs the file system a journal entry (0.3 ms of a C-STORE
            # here) that nobody needs to wait for; a crash first leaves it to cleanup_storage.
            storage.in_background(_remove_quietly, path)

    def refuse_too_large(self, name: str, size: int) -> IngestResult:
        """Record a file of *size* bytes, over the size limit, as rejected (for a caller that did not keep it)."""
        limit = settings.DICOM_MAX_FILE_BYTES
        reason = _("the file is %(size)s, over the limit of %(limit)s per file") % {
            "size": _display_size(size),
            "limit": _display_size(limit),
        }
        return self._record(IngestResult(name, Outcome.REJECTED, reason, size=size))

    def add_file(
        self, path: Path, name: str = "", *, sha256: str | Future[str] | None = None, data: bytes | None = None
    ) -> IngestResult:
        """Ingest the DICOM file at *path* (not moved or deleted; it may go once this returns).

        *sha256* is the hex SHA-256 of the file (or a future of it) when the
        caller hashed the bytes as it wrote them; otherwise the file is read
        to hash it. *data* is the file's bytes when the caller holds them; a
        file up to :data:`JOIN_UP_TO_BYTES` is read whole otherwise, and either
        way its header is parsed from memory.
        """
        name = name or path.name
        try:
            size = len(data) if data is not None else path.stat().st_size
            if size > settings.DICOM_MAX_FILE_BYTES:
                return self.refuse_too_large(name, size)
            if data is None and size <= JOIN_UP_TO_BYTES:
                data = path.read_bytes()  # one read: parsed from memory (see read_dataset)
        except OSError as exc:
            return self._record(IngestResult(name, Outcome.REJECTED, _("cannot read the file: %s") % exc.strerror))
        try:
            header = parse_header(data if data is not None else path)
        except DicomDirectory as exc:
            return self._record(IngestResult(name, Outcome.SKIPPED, exc.reason, size=size))
        except InvalidDicom as exc:
            return self._record(IngestResult(name, Outcome.REJECTED, exc.reason, size=size))
        result = IngestResult(
            name=name,
            outcome=Outcome.REJECTED,
            sop_class_uid=header.sop_class_uid,
            sop_instance_uid=header.sop_instance_uid,
            study_instance_uid=header.study_instance_uid,
            series_instance_uid=header.series_instance_uid,
            size=size,
        )
        if sha256 is None:  # from the bytes in memory when they were read for the parse, not read again
            sha256 = _sha256_hex([data]) if data is not None else storage.sha256_of(path)
        elif isinstance(sha256, Future):
            sha256 = sha256.result()
        if header.sop_instance_uid in self._staged_uids:
            # The same instance twice in one batch: judge the second against the
            # first once that is indexed, as one by one.
            self.flush()
        # One by one, an instance already stored is found by its INSERT (AlreadyIndexed),
        # not by a query before it: new ones, nearly all, then cost one statement, not two.
        # Its bytes have the same key as the stored ones, which storing keeps as they are.

        key = storage.dicom_key(
            self.institution.code,
            header.study_instance_uid,
            header.series_instance_uid,
            header.sop_instance_uid,
            sha256,
        )
        if self.batch_size > 0:
            return self._stage(result, header, key, path, size, sha256)
        if self.acknowledge_early:
            acknowledged = self._acknowledge(result, header, key, path, size, sha256)
            if acknowledged is not None:
                return self._record(acknowledged)
        return self._record(self._index_one(result, header, key, size, sha256, path))

    def _index_one(
        self, result: IngestResult, header: Header, key: str, size: int, sha256: str, path: Path | None = None
    ) -> IngestResult:
        """Index one file in its own transaction; its result says how it went.

        With *path*, the file is stored at *key* inside that transaction, after
        its row is written: PostgreSQL works on the row while the disk finishes
        the file's fsync (which the caller started as it wrote the bytes), and
        the row is committed, seen by anyone, only once the bytes are durable at
        *key*. An instance indexed before (a resend, or a conflict) is found by
        the INSERT, before anything is stored. Without *path*, the file is at
        *key* already (a batch indexed again one by one), and is removed if it
        is not indexed.
        """
        stored = path is None
        try:
            with transaction.atomic():
                instance = self._index(header, key, size, sha256)
                if path is not None:
                    try:
                        storage.store_file(key, path)
                    except OSError as exc:
                        raise _NotStored(exc) from exc
                    stored = True
        except (AlreadyIndexed, IntegrityError):
            # Stored before (a resend, or a conflict), or by someone else at the same moment.
            existing = self._existing(header.sop_instance_uid)
            if stored and (existing is None or existing.storage_key != key):
                storage.delete(key)
            if existing is None:
                result.outcome = Outcome.REJECTED
                result.reason = _("the file could not be indexed; nothing was kept, try again")
                return result
            return self._duplicate_or_conflict(result, existing, sha256)
        except IndexConflict as exc:
            if stored:
                storage.delete(key)
            result.outcome = Outcome.CONFLICT
            result.reason = str(exc)
            return result
        except _NotStored as failure:
            self._forget_rows()  # rolled back, with any rows this transaction made
            logger.exception("storing %s failed", key)
            result.outcome = Outcome.REJECTED
            result.reason = _("the server could not store the file (%s); nothing was kept, try again") % (
                failure.error.strerror
            )
            return result
        except Exception:
            self._forget_rows()
            if stored:  # never leave stored bytes without an index row when we can help it
                storage.delete(key)
            raise
        result.outcome = Outcome.STORED
        result.instance_id = instance.pk
        self._stored_by_study[instance.study_id].append(instance.pk)
        return result

    # --- acknowledged first, indexed next (C-STORE) ----------------------------

    def _acknowledge(
        self, result: IngestResult, header: Header, key: str, path: Path, size: int, sha256: str
    ) -> IngestResult | None:
        """Store a new instance of a series this session knows, for indexing after the answer; None if it cannot be.

        Returns the result to answer with: stored (its row to follow), or a
        duplicate or conflict of an instance the session knows of. None sends
        the file the one-by-one way: a series, patient or modality the session
        has not indexed yet, or an indexing thread that failed (whose trouble
        the one-by-one way then reports).
        """
        known = self._known_series(header)
        if known is None or (self._indexer is not None and self._indexer.failing):
            return None
        study, series_id = known
        in_series = self._instances_in_series(series_id)
        stored_sha256 = in_series.get(header.sop_instance_uid)
        if stored_sha256 is not None:
            return _judge_resend(result, stored_sha256, sha256)
        self._journal_series(series_id)
        try:
            storage.store_file(key, path)
        except OSError as exc:
            logger.exception("storing %s failed", key)
            result.reason = _("the server could not store the file (%s); nothing was kept, try again") % exc.strerror
            return result
        in_series[header.sop_instance_uid] = sha256
        result.outcome = Outcome.STORED  # answered now; indexed by index_acknowledged()
        if self._indexer is None:
            self._indexer = _AcknowledgedIndexer(self._index_acknowledged, background=connection.vendor != "sqlite")
        self._indexer.put(_Acknowledged(result, header, study, series_id, key, size, sha256))
        return result

    def index_acknowledged(self) -> None:
        """Have the instances acknowledged so far indexed: now on SQLite, else by the session's indexing thread.

        The DICOM SCP calls this once a response has gone out.
        """
        if self._indexer is not None:
            self._indexer.kick()

    def _instances_in_series(self, series_id: int) -> dict[str, str]:
        """SOP Instance UID → SHA-256 of the series' instances (read once per session, then kept up to date)."""
        known = self._known_in_series.get(series_id)
        if known is None:
            rows = Instance.objects.filter(series_id=series_id).values_list("sop_instance_uid", "sha256")
            known = self._known_in_series[series_id] = dict(rows)
        return known

    def _journal_series(self, series_id: int) -> None:
        """Make sure a fresh IngestJournal row names the series before an instance of it is acknowledged."""
        entry = self._journal.get(series_id)
        now = time.monotonic()
        if entry is not None and now - entry[1] < JOURNAL_TOUCH_SECONDS:
            return
        # Touched again after a long pause; recovery may have taken a stale row meanwhile.
        if entry is not None and IngestJournal.objects.filter(pk=entry[0]).update(touched_at=timezone.now()):
            self._journal[series_id] = (entry[0], now)
            return
        row = IngestJournal.objects.create(series_id=series_id, touched_at=timezone.now())
        self._journal[series_id] = (row.pk, now)

    def _index_acknowledged(self, items: list[_Acknowledged]) -> list[tuple[Study, int, int]]:
        """Index acknowledged instances with one INSERT (the indexing thread; raises if the database fails).

        Returns (study, series id, instance id) of each instance it indexed.
        """
        instances = [
            self._instance(item.header, item.study, item.series_id, item.key, item.size, item.sha256, save=False)
            for item in items
        ]
        with transaction.atomic():
            inserted = _insert_all_unless_indexed(instances)
        indexed = []
        for item in items:
            instance_id = inserted.get(item.header.sop_instance_uid)
            if instance_id is None:
                instance_id = self._acknowledged_but_indexed_before(item)
            if instance_id is not None:
                item.result.instance_id = instance_id
                indexed.append((item.study, item.series_id, instance_id))
        return indexed

    def _acknowledged_but_indexed_before(self, item: _Acknowledged) -> int | None:
        """The row the INSERT found for *item*: its id if it points to the same file, else None (a conflict).

        Someone indexed the instance between the session's look and its INSERT:
        this batch before it failed (tried again), recovery, or another sender
        with the same bytes (the same key) or with other bytes (a conflict,
        whose bytes this removes).
        """
        existing = self._existing(item.header.sop_instance_uid)
        if existing is None:  # the row that stood in the way is gone again: the batch is tried again
            raise IntegrityError(f"{item.header.sop_instance_uid} was neither inserted nor found")
        if existing.storage_key == item.key:
            return existing.pk
        storage.delete(item.key)
        logger.warning(
            "C-STORE of %s was acknowledged, then found to conflict with an instance stored at the same moment; "
            "the stored one was kept",
            item.header.sop_instance_uid,
        )
        item.result.outcome = Outcome.CONFLICT
        item.result.reason = _(
            "an instance with this SOP Instance UID was stored with different contents at the same moment; "
            "the stored one was kept"
        )
        return None

    def _finish_acknowledging(self) -> None:
        """End the indexing thread; drop the journal rows unless acknowledged instances were left unindexed."""
        if self._indexer is not None:
            self._indexer.stop()
            left = len(self._indexer.unindexed)
            if left:
                logger.error(
                    "%d acknowledged instances could not be indexed; recover_acknowledged will index them "
                    "once their journal rows are stale",
                    left,
                )
                return
        if self._journal:
            IngestJournal.objects.filter(pk__in=[row for row, _touched in self._journal.values()]).delete()
            self._journal.clear()

    # --- batches --------------------------------------------------------------

    def _stage(
        self, result: IngestResult, header: Header, key: str, path: Path, size: int, sha256: str
    ) -> IngestResult:
        if self._durable is None:
            self._durable = storage.DurableBatch()
        try:
            self._durable.add(key, path)
        except OSError as exc:
            logger.exception("storing %s failed", key)
            result.reason = _("the server could not store the file (%s); nothing was kept, try again") % exc.strerror
            return self._record(result)
        result.outcome = Outcome.STORED  # provisionally, until flush() has indexed it
        self._staged.append(_Staged(result, header, key, size, sha256))
        self._staged_uids.add(header.sop_instance_uid)
        self._record(result)
        if len(self._staged) >= self.batch_size:
            self.flush()
        return result

    def flush(self) -> None:
        """Make the staged files durable, put them in place and index them in one transaction."""
        staged, self._staged = self._staged, []
        self._staged_uids.clear()
        durable, self._durable = self._durable, None
        if not staged or durable is None:
            return
        try:
            existing = self._existing_many([item.header.sop_instance_uid for item in staged])
        except BaseException:
            durable.discard()
            for item in staged:
                item.result.outcome = Outcome.REJECTED
                item.result.reason = _("the file could not be indexed; nothing was kept, try again")
            raise
        if existing:
            # Already stored (a resend, or another upload): duplicate or conflict, and not put in place.
            for item in staged:
                found = existing.get(item.header.sop_instance_uid)
                if found is not None:
                    durable.drop(item.key)
                    self._duplicate_or_conflict(item.result, found, item.sha256)
            staged = [item for item in staged if item.header.sop_instance_uid not in existing]
            if not staged:
                durable.discard()
                return
        try:
            durable.commit()
        except BaseException as exc:
            logger.exception("storing a batch of %d files failed", len(staged))
            reason = exc.strerror if isinstance(exc, OSError) else type(exc).__name__
            for item in staged:
                item.result.outcome = Outcome.REJECTED
                item.result.reason = _("the server could not store the file (%s); nothing was kept, try again") % reason
            if not isinstance(exc, OSError):
                raise
            return
        uncounted = {study_id: set(series_ids) for study_id, series_ids in self._uncounted.items()}
        try:
            indexed = self._index_batch(staged)
        except Exception:
            # Rolled back as a whole: index the files one by one, as without batches.
            logger.info("indexing a batch of %d files failed; indexing them one by one", len(staged), exc_info=True)
            self._uncounted = defaultdict(set, uncounted)
            self._forget_rows()
            self._index_each(staged)
            return
        for item, outcome in indexed:
            if isinstance(outcome, IndexConflict):
                storage.delete(item.key)
                item.result.outcome = Outcome.CONFLICT
                item.result.reason = str(outcome)
            else:
                item.result.instance_id = outcome.pk
                self._stored_by_study[outcome.study_id].append(outcome.pk)

    def _index_batch(self, staged: list[_Staged]) -> list[tuple[_Staged, Instance | IndexConflict]]:
        """Index *staged* in one transaction; the instances of studies already known go in with one INSERT."""
        indexed: list[tuple[_Staged, Instance | IndexConflict]] = []
        with transaction.atomic():
            known: list[Instance] = []
            for item in staged:
                header, key, size, sha256 = item.header, item.key, item.size, item.sha256
                try:
                    instance = self._index_known(header, key, size, sha256, save=False)
                    if instance is None:
                        instance = self._index_new(header, key, size, sha256)
                    else:
                        known.append(instance)
                except IndexConflict as exc:  # its savepoint was rolled back; the batch goes on
                    indexed.append((item, exc))
                    continue
                indexed.append((item, instance))
            if known and len(_insert_all_unless_indexed(known)) < len(known):
                # Indexed meanwhile by someone else: roll back, go one by one.
                raise IntegrityError("an instance of the batch was indexed by another session meanwhile")
        return indexed

    def _index_each(self, staged: list[_Staged]) -> None:
        for position, item in enumerate(staged):
            try:
                self._index_one(item.result, item.header, item.key, item.size, item.sha256)
            except BaseException:
                for rest in staged[position + 1 :]:
                    storage.delete(rest.key)
                    rest.result.outcome = Outcome.REJECTED
                    rest.result.reason = _("the file could not be indexed; nothing was kept, try again")
                raise

    def _record(self, result: IngestResult) -> IngestResult:
        self.results.append(result)
        return result

    def _existing(self, sop_instance_uid: str) -> Instance | None:
        # A plain query: building it with the ORM cost more than running it, for every file.
        with connection.cursor() as cursor:
            cursor.execute(_existing_sql(), [self.institution.pk, sop_instance_uid])
            row = cursor.fetchone()
        if row is None:
            return None
        return Instance(pk=row[0], sha256=row[1], storage_key=row[2], study_id=row[3])

    def _existing_many(self, sop_instance_uids: list[str]) -> dict[str, Instance]:
        """The stored instances among *sop_instance_uids*, by SOP Instance UID (one query)."""
        return {
            instance.sop_instance_uid: instance
            for instance in Instance.objects.filter(
                institution=self.institution, sop_instance_uid__in=sop_instance_uids
            ).only("id", "sha256", "storage_key", "study_id", "sop_instance_uid")
        }

    def _duplicate_or_conflict(self, result: IngestResult, existing: Instance, sha256: str) -> IngestResult:
        result.instance_id = existing.pk
        return _judge_resend(result, existing.sha256, sha256)

    # --- index --------------------------------------------------------------

    def _index(self, header: Header, key: str, size: int, sha256: str) -> Instance:
        try:
            known = self._index_known(header, key, size, sha256)
            return known if known is not None else self._index_new(header, key, size, sha256)
        except AlreadyIndexed:
            raise  # no row was written, so none we remember was rolled back
        except Exception:
            # A failed transaction may have rolled back rows we remembered.
            self._forget_rows()
            raise

    def _forget_rows(self) -> None:
        self._patients.clear()
        self._studies.clear()
        self._series.clear()

    def _instance(
        self, header: Header, study: Study, series_id: int, key: str, size: int, sha256: str, *, save: bool = True
    ) -> Instance:
        """The instance's index row, inserted (or, with ``save=False``, for the caller to insert).

        Raises :class:`AlreadyIndexed` if the institution has this SOP Instance UID already.
        """
        instance = Instance(
            institution=self.institution,
            study=study,
            series_id=series_id,
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            instance_number=header.instance_number,
            transfer_syntax_uid=header.transfer_syntax_uid,
            storage_key=key,
            size=size,
            sha256=sha256,
            number_of_frames=header.number_of_frames,
            rows=header.rows,
            columns=header.columns,
            metadata=header.metadata,
            preview_status=Instance.PreviewStatus.PENDING,
        )
        if save and not _insert_unless_indexed(instance):
            raise AlreadyIndexed(header.sop_instance_uid)
        return instance

    def _known_series(self, header: Header) -> tuple[Study, int] | None:
        """The study and series id of an instance whose patient, study, series and modality this session has seen."""
        study = self._studies.get(header.study_instance_uid)
        patient_id = self._patients.get((header.issuer_of_patient_id, header.patient_id))
        if study is None or patient_id is None or study.patient_id != patient_id:
            return None
        series_id = self._series.get((study.pk, header.series_instance_uid))
        if series_id is None or (header.modality and header.modality not in study.modality_list):
            return None
        return study, series_id

    def _index_known(self, header: Header, key: str, size: int, sha256: str, *, save: bool = True) -> Instance | None:
        """Index an instance of a patient, study, series and modality this session has seen; None if not."""
        known = self._known_series(header)
        if known is None:
            return None
        study, series_id = known
        instance = self._instance(header, study, series_id, key, size, sha256, save=save)
        self._uncounted[study.pk].add(series_id)
        self._touched_studies[study.pk] = study
        return instance

    def _index_new(self, header: Header, key: str, size: int, sha256: str) -> Instance:
        with transaction.atomic():
            patient, _created = Patient.objects.get_or_create(
                institution=self.institution,
                issuer=header.issuer_of_patient_id,
                patient_id=header.patient_id,
                defaults={
                    "name": header.patient_name,
                    "name_search": fold_for_search(header.patient_name),
                    "birth_date": header.patient_birth_date,
                    "sex": header.patient_sex,
                },
            )
            study = (
                Study.objects.select_for_update()
                .filter(institution=self.institution, study_instance_uid=header.study_instance_uid)
                .first()
            )
            if study is None:
                study = Study.objects.create(
                    institution=self.institution,
                    patient=patient,
                    study_instance_uid=header.study_instance_uid,
                    study_date=header.study_date,
                    study_time=header.study_time,
                    accession_number=header.accession_number,
                    study_id=header.study_id,
                    description=header.study_description,
                    referring_physician_name=header.referring_physician_name,
                    uploaded_by=self.actor,
                )
            elif study.patient_id != patient.pk:
                raise IndexConflict(
                    _("this study is already filed under another patient ID (%(existing)s); the file says %(new)s")
                    % {"existing": study.patient.patient_id or "-", "new": header.patient_id or "-"}
                )
            series, series_created = Series.objects.get_or_create(
                study=study,
                series_instance_uid=header.series_instance_uid,
                defaults={
                    "modality": header.modality,
                    "series_number": header.series_number,
                    "description": header.series_description,
                    "body_part": header.body_part,
                },
            )
            instance = self._instance(header, study, series.pk, key, size, sha256)
            Series.objects.filter(pk=series.pk).update(number_of_instances=F("number_of_instances") + 1)
            modalities = study.modality_list
            if header.modality and header.modality not in modalities:
                modalities.append(header.modality)
            Study.objects.filter(pk=study.pk).update(
                number_of_instances=F("number_of_instances") + 1,
                number_of_series=F("number_of_series") + (1 if series_created else 0),
                modalities="\\".join(modalities),
                status=Study.Status.PENDING,
            )
        study.modalities = "\\".join(modalities)
        self._patients[(header.issuer_of_patient_id, header.patient_id)] = patient.pk
        self._studies[header.study_instance_uid] = study
        self._series[(study.pk, header.series_instance_uid)] = series.pk
        self._touched_studies[study.pk] = study
        return instance

    # --- end of batch ---------------------------------------------------------

    def close(self) -> None:
        """Index what is staged or acknowledged, then schedule previews, notify pages and audit, once per study."""
        try:
            if self._indexer is not None:
                self._indexer.drain()  # a batch that failed is tried once more
            self.hand_over()()
        finally:
            self._finish_acknowledging()
            if self._spool is not None:
                self._spool.close()

    def hand_over(self) -> Callable[[], None]:
        """Index what is staged, and return the rest of :meth:`close` for what was indexed since the last close.

        The function returned needs nothing more of the session: another thread
        (with its own database connection) may run it while this one goes on
        adding files, as the DICOM SCP does. It first waits for the instances
        acknowledged so far to be indexed, so this thread need not.
        """
        self.flush()
        acknowledged = self._indexer.indexed_by_then() if self._indexer is not None else None
        uncounted, self._uncounted = self._uncounted, defaultdict(set)
        stored, self._stored_by_study = self._stored_by_study, defaultdict(list)
        studies, self._touched_studies = self._touched_studies, {}
        results, self._audited = self.results[self._audited :], len(self.results)
        audit = {
            "request": self.request,
            "actor": self.actor,
            "actor_label": self.actor_label,
            "address": self.address,
            "institution": self.institution,
        }
        return partial(_after_indexing, self.entry_point, audit, uncounted, stored, studies, results, acknowledged)


def _after_indexing(
    entry_point: str,
    audit: dict[str, Any],
    uncounted: dict[int, set[int]],
    stored: dict[int, list[int]],
    studies: dict[int, Study],
    results: list[IngestResult],
    acknowledged: Callable[[], list[tuple[Study, int, int]]] | None = None,
) -> None:
    """Set counters, schedule previews, tell the pages and audit, for files a session indexed (see ``hand_over``).

    *acknowledged* waits for the acknowledged instances of the hand-over to be
    indexed and gives (study, series id, instance id) of those it indexed.
    """
    from clinicnet.events import push_to_institutions
    from imaging.tasks import schedule_previews

    for study, series_id, instance_id in acknowledged() if acknowledged is not None else []:
        stored.setdefault(study.pk, []).append(instance_id)
        uncounted.setdefault(study.pk, set()).add(series_id)
        studies[study.pk] = study
    _recount(uncounted)
    institution: Institution = audit["institution"]
    for study_id, instance_ids in stored.items():
        study = studies[study_id]
        schedule_previews(study_id=study_id, instance_ids=instance_ids, priority=study.priority)
        push_to_institutions(
            [institution.pk],
            {"type": "study.updated", "study": study.study_instance_uid, "status": Study.Status.PENDING},
        )
    by_study: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for result in results:
        by_study[result.study_instance_uid or ""][result.outcome] += 1
    for study_uid, counts in by_study.items():
        audit_record(
            action="study.store" if study_uid else "study.store_rejected",
            object_type="study",
            object_id=study_uid,
            detail={"entry_point": entry_point, **counts},
            **audit,
        )


def _recount(uncounted: dict[int, set[int]]) -> None:
    """Set the counters of the studies and series the quick path added to (see ``IngestSession._patients``)."""
    for study_id, series_ids in uncounted.items():
        Series.objects.filter(pk__in=series_ids).update(number_of_instances=_instances_of("series"))
        Study.objects.filter(pk=study_id).update(
            number_of_instances=_instances_of("study"), status=Study.Status.PENDING
        )


def _instances_of(parent: str) -> Coalesce:
    """The number of instances of the row being updated, whose foreign key on Instance is *parent*."""
    per_parent = Instance.objects.filter(**{parent: OuterRef("pk")}).order_by().values(parent)
    return Coalesce(Subquery(per_parent.annotate(count=Count("pk")).values("count")), 0)


def _judge_resend(result: IngestResult, stored_sha256: str, sha256: str) -> IngestResult:
    """*result* as a duplicate (the same bytes again) or a conflict (other bytes under a stored SOP Instance UID)."""
    if stored_sha256 == sha256:
        result.outcome = Outcome.DUPLICATE
        result.reason = _("already stored (identical file)")
    else:
        result.outcome = Outcome.CONFLICT
        result.reason = _(
            "an instance with this SOP Instance UID is already stored with different contents; the stored one was kept"
        )
    return result


class _AcknowledgedIndexer:
    """Indexes a session's acknowledged instances in batches, in a thread of its own or (SQLite) in the caller's.

    :meth:`put` queues an instance; :meth:`kick`, called once its answer has
    gone out, wakes the thread for the first of a batch (which then waits up
    to :data:`ACKNOWLEDGED_LINGER_SECONDS` for more) and for a whole batch;
    without a thread it indexes the queue at once. A batch that fails is kept
    in :attr:`unindexed` and tried once more by :meth:`drain`; meanwhile
    :attr:`failing` sends new files the one-by-one way. The thread closes its
    database connection when it ends (:meth:`stop`).
    """

    def __init__(
        self, index: Callable[[list[_Acknowledged]], list[tuple[Study, int, int]]], *, background: bool
    ) -> None:
        self._index = index
        self._background = background
        self._ready = threading.Condition()
        self._queue: list[_Acknowledged] = []
        self._first_queued = 0.0
        self._queued = 0  # instances put so far
        self._done = 0  # of them, indexed or kept in unindexed
        self._waiting = 0  # callers waiting for _done: the thread does not linger then
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._indexed: list[tuple[Study, int, int]] = []
        self.unindexed: list[_Acknowledged] = []
        self.failing = False

    def put(self, item: _Acknowledged) -> None:
        with self._ready:
            if not self._queue:
                self._first_queued = time.monotonic()
            self._queue.append(item)
            self._queued += 1

    def kick(self) -> None:
        if not self._background:
            with self._ready:
                batch, self._queue = self._queue, []
            self._run(batch)
            return
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="clinicnet-index-acknowledged", daemon=True)
                self._thread.start()
            # Woken for the first of a batch (to time its wait) and for a full one, not for each.
            if len(self._queue) == 1 or len(self._queue) >= ACKNOWLEDGED_BATCH:
                self._ready.notify_all()

    def indexed_by_then(self) -> Callable[[], list[tuple[Study, int, int]]]:
        """A function that waits until what was put so far is indexed, and gives what was indexed since the last one."""
        with self._ready:
            mark = self._queued

        def indexed() -> list[tuple[Study, int, int]]:
            self._wait_for(mark)
            with self._ready:
                done, self._indexed = self._indexed, []
            return done

        return indexed

    def drain(self) -> None:
        """Return once everything put is indexed, or kept in :attr:`unindexed` after one more try."""
        with self._ready:
            mark = self._queued
        self._wait_for(mark)
        if self.unindexed:
            retry, self.unindexed = self.unindexed, []
            self.failing = False
            self._run(retry, again=True)

    def stop(self) -> None:
        self.drain()
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _wait_for(self, mark: int) -> None:
        if not self._background:
            self.kick()
            return
        with self._ready:
            self._waiting += 1
            self._ready.notify_all()
            try:
                while self._done < mark:
                    self._ready.wait()
            finally:
                self._waiting -= 1

    def _work(self) -> None:
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._stopping:
                        self._ready.wait()
                    if not self._queue:
                        return
                    # The sender goes on meanwhile; a fuller batch costs the database less per instance.
                    while len(self._queue) < ACKNOWLEDGED_BATCH and not self._waiting and not self._stopping:
                        left = self._first_queued + ACKNOWLEDGED_LINGER_SECONDS - time.monotonic()
                        if left <= 0:
                            break
                        self._ready.wait(left)
                    batch = self._queue[:ACKNOWLEDGED_BATCH]
                    del self._queue[:ACKNOWLEDGED_BATCH]
                    if self._queue:
                        self._first_queued = time.monotonic()
                self._run(batch)
        finally:
            with self._ready:  # nothing is left waiting for a thread that is gone
                abandoned, self._queue = self._queue, []
                self.unindexed.extend(abandoned)
                self._done += len(abandoned)
                self._ready.notify_all()
            connections.close_all()

    def _run(self, batch: list[_Acknowledged], *, again: bool = False) -> None:
        """Index *batch*; *again* for one that failed before (counted as done then already)."""
        if not batch:
            return
        indexed: list[tuple[Study, int, int]] = []
        try:
            indexed = self._index(batch)
        except Exception:
            logger.exception("indexing %d acknowledged instances failed; they are tried again later", len(batch))
            self.unindexed.extend(batch)
            self.failing = True
        finally:
            with self._ready:
                self._indexed.extend(indexed)
                if not again:
                    self._done += len(batch)
                self._ready.notify_all()


def recover_acknowledged(*, stale_after: timedelta = JOURNAL_STALE_AFTER) -> list[IngestResult]:
    """Index the files of series whose sessions acknowledged instances and never closed; their results.

    A journal row untouched for *stale_after* belongs to a session that is gone
    (see the module docstring). Every file in its series' folder that no index
    row points to goes through the one ingest path, as the institution's
    (``EntryPoint.DIMSE``); one stored meanwhile by someone else is a duplicate.
    The row is removed once its series is done.
    """
    results: list[IngestResult] = []
    stale = IngestJournal.objects.filter(touched_at__lt=timezone.now() - stale_after)
    for entry in stale.select_related("series__study__institution").order_by("pk"):
        series = entry.series
        study = series.study
        institution = study.institution
        folder = storage.series_prefix(institution.code, study.study_instance_uid, series.series_instance_uid)
        indexed = set(Instance.objects.filter(series=series).values_list("storage_key", flat=True))
        with IngestSession(
            institution=institution, entry_point=EntryPoint.DIMSE, actor_label="recovery of acknowledged instances"
        ) as session:
            for key in sorted(storage.walk(folder)):
                if key in indexed or not key.endswith(".dcm"):
                    continue
                with storage.local_path(key) as path:
                    session.add_file(path, name=key)
        for result in session.results:
            logger.warning("recovered acknowledged instance %s: %s %s", result.name, result.outcome, result.reason)
        results.extend(session.results)
        IngestJournal.objects.filter(pk=entry.pk).delete()
    return results


def _sha256_hex(parts: Sequence[bytes | memoryview]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _insert_unless_indexed(instance: Instance) -> bool:
    """INSERT *instance*'s row and set its primary key; False (and nothing written) if it is indexed already."""
    return bool(_insert_all_unless_indexed([instance]))


def _insert_all_unless_indexed(instances: list[Instance]) -> dict[str, int]:
    """INSERT the rows of *instances* with one statement and set the primary keys of those inserted.

    Returns those keys by SOP Instance UID; an instance missing from the
    answer was indexed already, and nothing was written for it. A plain
    statement: through ``Model.save()`` the same INSERT cost about a third
    more per C-STORE (``bulk_create`` a tenth of a STOW-RS part), and ``ON
    CONFLICT DO NOTHING`` answers "stored before?" without a query of its own
    or a failed statement in the server's log.
    """
    fields = _insert_fields()
    params = [
        column.get_db_prep_save(column.pre_save(instance, True), connection)
        for instance in instances
        for column in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(len(instances)), params)
        inserted = {sop_instance_uid: pk for pk, sop_instance_uid in cursor.fetchall()}
    for instance in instances:
        if instance.sop_instance_uid in inserted:
            instance.pk = inserted[instance.sop_instance_uid]
            instance._state.adding = False
            instance._state.db = connection.alias
    return inserted


@cache
def _insert_fields() -> list[Field[Any, Any]]:
    return [column for column in Instance._meta.concrete_fields if not column.primary_key]


@cache
def _insert_sql(rows: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(column.column)) for column in _insert_fields())
    row = "(" + ", ".join(["%s"] * len(_insert_fields())) + ")"
    returning = f"{quote(str(Instance._meta.pk.column))}, {quote('sop_instance_uid')}"
    # Names come from the model, values are query parameters.
    return (
        f"INSERT INTO {quote(Instance._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    )


def _existing_sql() -> str:
    table = connection.ops.quote_name(Instance._meta.db_table)
    column_of = {field.name: str(field.column) for field in Instance._meta.concrete_fields}
    columns = [
        connection.ops.quote_name(column_of[name])
        for name in ("id", "sha256", "storage_key", "study", "institution", "sop_instance_uid")
    ]
    # Names come from the model, values are query parameters.
    return f"SELECT {', '.join(columns[:4])} FROM {table} WHERE {columns[4]} = %s AND {columns[5]} = %s LIMIT 1"  # noqa: S608


def spool_path() -> Path:
    """Folder for temporary copies of uploads, on the data disk (not /tmp in RAM); it may not exist yet."""
    return Path(settings.DATA_DIR) / "spool"


def spool_dir() -> str:
    """:func:`spool_path`, made if missing."""
    path = spool_path()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


class _SpoolFiles:
    """A session's new spool files, each made in the background while the one before is used.

    Creating a file waits for the file system's journal: 0.2 ms of a C-STORE
    here, which the next C-STORE then need not wait for. :meth:`close` removes
    the one made ahead and not used.
    """

    def __init__(self) -> None:
        self._taken = 0
        self._next: Future[tuple[Path, int]] | None = None

    def take(self) -> tuple[Path, int]:
        """A new spool file, open for writing: its path and descriptor (the caller closes and removes it)."""
        self._taken += 1
        # Made ahead from the second on: a session that wrote one file may well write no more.
        made, self._next = self._next, storage.in_background(_new_spool_file) if self._taken > 1 else None
        if made is not None:
            try:
                return made.result()
            except OSError:
                pass  # said again by making one here
        return _new_spool_file()

    def close(self) -> None:
        made, self._next = self._next, None
        if made is not None:
            try:
                path, fd = made.result()
            except OSError:
                return
            os.close(fd)
            _remove_quietly(path)


def _new_spool_file() -> tuple[Path, int]:
    """A new file in the spool folder, open for writing: its path and descriptor (the caller removes it)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    path = spool_path() / f"{uuid.uuid4().hex}.dcm"
    try:
        return path, os.open(path, flags, 0o600)
    except FileNotFoundError:  # the first file on a fresh data folder: only then is mkdir paid for
        spool_dir()
        return path, os.open(path, flags, 0o600)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        logger.warning("could not remove the spool file %s", path, exc_info=True)


def _write_all(fd: int, parts: Sequence[bytes | memoryview]) -> None:
    """Write *parts* one after another, a system call for up to 1024 of them (IOV_MAX), none joined or copied."""
    views = [memoryview(part) for part in parts if len(part)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + 1024])
        if written == 0:
            raise OSError(errno.EIO, "nothing could be written")
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]
