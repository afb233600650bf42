"""Where DICOM files and rendered images live: Django's default storage.

Keys are derived from the owning institution, the UIDs and the content hash,
so two different files with the same SOP Instance UID can never overwrite
each other (the second is a conflict, and its bytes go to another key until
the index refuses them and they are removed).

Writes are atomic: on the local file system the bytes go to a temporary name
under ``tmp/`` in the same folder tree and are renamed into place; object
stores (S3) only show an object once it is completely uploaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

DICOM_PREFIX = "dicom"
PREVIEW_PREFIX = "previews"
TMP_PREFIX = "tmp"
CHUNK = 1024 * 1024


def _safe(uid: str) -> str:
    # UIDs are digits and dots already; anything else is replaced so a key
    # can never climb out of its folder.
    return "".join(ch if ch.isdigit() or ch == "." else "_" for ch in uid)[:64] or "_"


def dicom_key(institution_code: str, study_uid: str, series_uid: str, sop_uid: str, sha256: str) -> str:
    return (
        f"{DICOM_PREFIX}/{_safe(institution_code)}/{_safe(study_uid)}/{_safe(series_uid)}/"
        f"{_safe(sop_uid)}.{sha256[:16]}.dcm"
    )


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


def store_file(key: str, source: Path) -> None:
    """Put the bytes of *source* at *key*, atomically.

    An existing object at *key* is replaced; keys include the content hash,
    so a replacement always carries the same bytes.
    """
    root = _local_root()
    if root is None:
        with source.open("rb") as handle:
            default_storage.save(key, File(handle, name=key))
        return
    target = root / key
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = root / TMP_PREFIX
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
    try:
        if not _link_spooled(source, tmp):
            shutil.copyfile(source, tmp)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _link_spooled(source: Path, tmp: Path) -> bool:
    """Hard-link *source* to *tmp* when it is one of our own temporary files; True if done.

    Files in the spool folder (uploads, zip entries, STOW-RS parts, C-STORE
    data sets) are written once by ClinicNet and never changed afterwards, so
    the archive can take their bytes without writing them a second time.
    Anything else (a user's file given to ``import_dicom``) is copied: it may
    be changed later, and a link would change the archive with it.
    """
    from imaging.ingest import spool_dir

    try:
        if source.resolve().parent != Path(spool_dir()).resolve():
            return False
        os.link(source, tmp)
    except OSError:  # another file system, or links not supported: copy instead
        return False
    return True


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
