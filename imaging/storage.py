"""Where DICOM files and rendered images live: Django's default storage.

Keys are derived from the owning institution, the UIDs and the content hash,
so two different files with the same SOP Instance UID can never overwrite
each other (the second is a conflict, and its bytes go to another key until
the index refuses them and they are removed).

Writes are atomic: on the local file system the bytes go to a temporary name
under ``tmp/`` in the same folder tree and are renamed into place; object
stores (S3) only show an object once it is completely uploaded.

Durable: :func:`store_file` returns once the bytes are on disk (fsync), or,
with ``durable=False``, leaves that to a :class:`DurableBatch`, which fsyncs
the files in background threads while the caller goes on with the next file
and waits for all of them (and their folders) before the caller commits the
index rows that point to them. Either way nothing is indexed before its bytes
are durable.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, TypeVar

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from clinicnet.lib.threads import LazyThreadPool

DICOM_PREFIX = "dicom"
PREVIEW_PREFIX = "previews"
TMP_PREFIX = "tmp"
CHUNK = 1024 * 1024
T = TypeVar("T")


_NOT_IN_A_UID = re.compile(r"[^0-9.]")


def _safe(uid: str) -> str:
    # UIDs are digits and dots already; anything else is replaced so a key
    # can never climb out of its folder.
    return _NOT_IN_A_UID.sub("_", uid)[:64] or "_"


def dicom_key(institution_code: str, study_uid: str, series_uid: str, sop_uid: str, sha256: str) -> str:
    return f"{series_prefix(institution_code, study_uid, series_uid)}/{_safe(sop_uid)}.{sha256[:16]}.dcm"


def series_prefix(institution_code: str, study_uid: str, series_uid: str) -> str:
    """The folder of a series' DICOM files (every :func:`dicom_key` of the series starts with it and a slash)."""
    return f"{DICOM_PREFIX}/{_safe(institution_code)}/{_safe(study_uid)}/{_safe(series_uid)}"


def preview_key(instance_key: str, frame_index: int) -> str:
    """Preview of one frame, next to nothing else: derived from the instance's key."""
    stem = instance_key.removeprefix(f"{DICOM_PREFIX}/").removesuffix(".dcm")
    return f"{PREVIEW_PREFIX}/{stem}/frame-{frame_index + 1:05d}.jpg"


def thumbnail_key(institution_code: str, study_uid: str, series_uid: str) -> str:
    return f"{PREVIEW_PREFIX}/{_safe(institution_code)}/{_safe(study_uid)}/{_safe(series_uid)}/thumbnail.jpg"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local_root() -> Path | None:
    if isinstance(default_storage, FileSystemStorage):
        return Path(default_storage.location)
    return None


def store_file(key: str, source: Path, *, durable: bool = True) -> None:
    """Put the bytes of *source* at *key*, atomically, and (unless *durable* is False) durably.

    An existing object at *key* is replaced, or for a spool file kept; keys
    include the content hash, so either way it holds the same bytes. With ``durable=False``
    the caller must pass *key* to a :class:`DurableBatch` and wait for it
    before anything refers to *key*.
    """
    root = _local_root()
    if root is None:
        if default_storage.exists(key):  # the same bytes (the key carries their hash): not uploaded again
            return
        with source.open("rb") as handle:
            default_storage.save(key, File(handle, name=key))
        return
    target = root / key
    if durable and _is_spooled(source) and _link_durably(source, target):
        return
    if _is_stored_at(source, target):  # a file recovered where it lies, at its key already
        return
    tmp = _temporary_copy(root, source)
    try:
        if durable:
            _fsync(tmp)
        _in_its_folder(os.replace, tmp, target)
        if durable:
            _fsync(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _is_stored_at(source: Path, target: Path) -> bool:
    try:
        return os.path.samefile(source, target)
    except OSError:  # no file at the key yet: the usual case
        return False


def _in_its_folder(put: Callable[[Path, Path], None], source: Path, target: Path) -> None:
    """``put(source, target)`` (a rename or a link), making the target's folder when it does not exist yet."""
    try:
        put(source, target)
    except FileNotFoundError:  # the first file of a series
        target.parent.mkdir(parents=True, exist_ok=True)
        put(source, target)


def _link_durably(source: Path, target: Path) -> bool:
    """Give a spool file's bytes their key with one hard link, durably; False if links cannot be made here.

    The bytes are made durable first, so the key appears at once naming
    complete, durable bytes, as after a rename; one fsync of the folder then
    makes the name durable. (A temporary name and a rename cost a second
    journal commit, about a tenth of a C-STORE here.) A key that exists
    already holds the same bytes, since it carries their hash.
    """
    _fsync(source)
    try:
        _in_its_folder(os.link, source, target)
    except FileExistsError:
        pass
    except OSError:  # another file system, or no hard links: the caller copies (and says what failed)
        return False
    _fsync(target.parent)
    return True


def _temporary_copy(root: Path, source: Path) -> Path:
    """The bytes of *source* under a new temporary name in ``tmp/`` (linked when spooled, else copied)."""
    tmp_dir = root / TMP_PREFIX
    tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
    try:
        if not tmp_dir.is_dir():  # the first file of a fresh storage folder
            tmp_dir.mkdir(parents=True, exist_ok=True)
        if not _link_spooled(source, tmp):
            shutil.copyfile(source, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync(path: Path) -> None:
    """fsync a file or a folder (a folder: so that a rename into it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# fsync waits for the disk, not for the CPU, and releases the GIL: a few
# threads let the disk work on the files of a batch while the caller parses
# the next one, and let the file system merge their journal commits.
_SYNC_THREADS = 4
_pool = LazyThreadPool(max_workers=_SYNC_THREADS, thread_name_prefix="clinicnet-fsync")


def in_background(function: Callable[..., T], *args: Any) -> Future[T]:
    """Run *function* in the storage threads (for work that lets go of the GIL, such as hashing)."""
    return _pool.submit(function, *args)


class DurableBatch:
    """Files to store together: written at once, made durable and put in place at :meth:`commit`.

    :meth:`add` brings a file's bytes under a temporary name in the storage
    (a hard link for spool files, else a copy) and starts its fsync in a
    background thread at once, so the disk works while the caller parses the
    next file. :meth:`commit` waits for those fsyncs, renames each file to
    its key and makes the renames durable (one fsync per folder). A key only
    ever names complete, durable bytes, as with :func:`store_file`. Object
    stores need none of this: their upload is the durable write.
    """

    def __init__(self) -> None:
        self._root = _local_root()
        self._staged: list[tuple[Path, str, Future[None]]] = []

    def __len__(self) -> int:
        return len(self._staged)

    def add(self, key: str, source: Path) -> None:
        """Stage *source* for *key*; raises ``OSError`` as :func:`store_file` does (nothing is left then)."""
        if self._root is None:
            store_file(key, source)
            return
        tmp = _temporary_copy(self._root, source)
        self._staged.append((tmp, key, _pool.submit(_fsync, tmp)))

    def commit(self) -> None:
        """Put every staged file at its key, durably; raise ``OSError`` if that failed for any.

        After a failure the caller must index none of them. Files already
        renamed stay where they are (the key may be another session's
        identical file); unindexed, they are what ``cleanup_storage`` removes.
        """
        staged, self._staged = self._staged, []
        if self._root is None or not staged:
            return
        try:
            error: OSError | None = None
            for _tmp, _key, synced in staged:
                try:
                    synced.result()
                except OSError as exc:
                    error = error or exc
            if error is not None:
                raise error
            folders: set[Path] = set()
            for tmp, key, _synced in staged:
                target = self._root / key
                _in_its_folder(os.replace, tmp, target)
                folders.add(target.parent)
            for future in [_pool.submit(_fsync, folder) for folder in folders]:
                future.result()
        finally:
            for tmp, _key, _synced in staged:
                tmp.unlink(missing_ok=True)

    def drop(self, key: str) -> None:
        """Forget the file staged for *key* (it will not be put in place)."""
        keep = []
        for tmp, staged_key, synced in self._staged:
            if staged_key == key:
                synced.cancel()
                tmp.unlink(missing_ok=True)
            else:
                keep.append((tmp, staged_key, synced))
        self._staged = keep

    def discard(self) -> None:
        """Drop every staged file (after a failure before :meth:`commit`)."""
        staged, self._staged = self._staged, []
        for tmp, _key, synced in staged:
            with contextlib.suppress(Exception):
                synced.result()
            tmp.unlink(missing_ok=True)


def _link_spooled(source: Path, tmp: Path) -> bool:
    """Hard-link *source* to *tmp* when it is one of our own temporary files; True if done.

    Files in the spool folder (uploads, zip entries, STOW-RS parts, C-STORE
    data sets) are written once by ClinicNet and never changed afterwards, so
    the archive can take their bytes without writing them a second time.
    Anything else (a user's file given to ``import_dicom``) is copied: it may
    be changed later, and a link would change the archive with it.
    """
    try:
        if not _is_spooled(source):
            return False
        os.link(source, tmp)
    except OSError:  # another file system, or links not supported: copy instead
        return False
    return True


def _is_spooled(source: Path) -> bool:
    """Whether *source* is one of our own temporary files (see :func:`_link_spooled`)."""
    from imaging.ingest import spool_path

    spool = spool_path()
    try:
        return source.parent == spool or source.resolve().parent == spool.resolve()
    except OSError:
        return False


def store_bytes(key: str, data: bytes) -> None:
    """Like :func:`store_file` for small content such as a rendered preview."""
    root = _local_root()
    if root is None:
        from django.core.files.base import ContentFile

        if default_storage.exists(key):
            default_storage.delete(key)
        default_storage.save(key, ContentFile(data, name=key))
        return
    target = root / key
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def delete(key: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        default_storage.delete(key)


def open_file(key: str) -> IO[bytes]:
    return default_storage.open(key, "rb")


@contextlib.contextmanager
def local_path(key: str) -> Iterator[Path]:
    """A path on local disk holding the object's bytes (downloaded when remote)."""
    root = _local_root()
    if root is not None:
        yield root / key
        return
    with default_storage.open(key, "rb") as remote, tempfile.NamedTemporaryFile(suffix=".dcm") as local:
        shutil.copyfileobj(remote, local, CHUNK)
        local.flush()
        yield Path(local.name)


def walk(prefix: str) -> Iterator[str]:
    """Every key under *prefix* (recursively)."""
    try:
        directories, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from walk(f"{prefix}/{directory}")
