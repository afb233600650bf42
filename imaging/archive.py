"""Turn an upload — a DICOM file, a zip of a CD, or a folder — into files for ingest.

The web upload and ``manage.py import_dicom`` share this module; both then hand
each file to the one ingest path (:class:`imaging.ingest.IngestSession`).

API
---
``expand_upload(path, name="")`` yields one :class:`ArchiveEntry` per file found:

* ``entry.name`` — what to show people: the upload's name, then the member's
  path inside the zip or folder (``"cd.zip/DICOM/IM0001"``);
* ``entry.path`` — a local file to ingest, or ``None`` when the entry was refused;
* ``entry.rejection`` — why it was refused, in words a clerk can act on (empty
  when ``path`` is set).

Consume it one entry at a time: a zip member is inflated to a temporary file in
:func:`imaging.ingest.spool_dir` only when its entry is produced, and that file
is removed as soon as the consumer asks for the next entry (or stops early),
so at most one member is on disk and none is ever in memory whole::

    with IngestSession(institution=..., entry_point=EntryPoint.WEB, actor=user) as session:
        for entry in expand_upload(Path(upload.temporary_file_path()), upload.name):
            ingest_entry(session, entry)

:func:`ingest_entry` ingests an entry, or records its rejection in the
session's results so that every entry gets exactly one result and the audit
trail counts it.

What is refused, and how
------------------------
A file is a zip when its first bytes say so (``PK\\x03\\x04`` / ``PK\\x05\\x06``),
whatever its name, unless it is a DICOM file (``DICM`` at byte 128). In a zip,
each member is refused on its own, with the reason, when its path climbs out
(``../``, absolute or drive paths), when it is a symbolic link or another
non-regular file, a zip inside the zip, encrypted, compressed with a method
Python cannot read, or damaged (bad CRC). Sizes are never taken from the zip's
headers: the bytes are counted while inflating, and inflating stops as soon as
a member passes ``settings.DICOM_MAX_FILE_BYTES``, or inflates to more than
``settings.ZIP_MAX_RATIO`` times its compressed size (a zip bomb; checked once a
member has produced ``RATIO_FLOOR`` bytes, so that a small all-black image is
not mistaken for one). When the running total passes
``settings.ZIP_MAX_TOTAL_BYTES`` that member and the rest of the archive are
refused (one entry says how many were not read). A zip with more than
``settings.ZIP_MAX_ENTRIES`` members, or one that cannot be opened at all, is
refused as one entry.

Folders (and folders of a CD) are walked in name order; zips found in a folder
are expanded, zips inside those are refused. Symbolic links to folders are not
followed. DICOMDIR files are passed on: the ingest marks them as skipped (the
images they list are imported as the files they are). Operating-system clutter
(``__MACOSX/``, ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``) is left out
without a word.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from imaging.ingest import IngestResult, IngestSession, Outcome, spool_dir

CHUNK = 1024 * 1024
# A member must produce this much before its compression ratio is judged.
RATIO_FLOOR = 1024 * 1024
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
CLUTTER = {".ds_store", "thumbs.db", "desktop.ini"}
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveEntry:
    """One file of an upload: a local ``path`` to ingest, or the ``rejection`` saying why not."""

    name: str
    path: Path | None
    rejection: str = ""


class _TotalExceeded(Exception):
    pass


def expand_upload(path: Path, name: str = "") -> Iterator[ArchiveEntry]:
    """Yield the files of the upload at *path* (a file, a zip or a folder) for ingest.

    Parameters
    ----------
    path
        A local file or directory.
    name
        What the user called it (the uploaded file's name); defaults to ``path.name``.

    Yields
    ------
    ArchiveEntry
        One per file; temporary files are removed when the next entry is requested.
    """
    name = name or path.name
    if path.is_dir():
        yield from _expand_directory(path, name)
    else:
        yield from _expand_file(path, name)


def count_entries(path: Path) -> int:
    """About how many entries :func:`expand_upload` will yield for *path* (for progress bars).

    Reads folder listings, the first bytes of each file and zip directories; nothing is inflated.
    """
    if path.is_dir():
        total = 0
        for folder, _directories, files in os.walk(path, followlinks=False):
            total += sum(count_entries(Path(folder) / name) for name in files if name.lower() not in CLUTTER)
        return total
    if _sniff(path) != "zip":
        return 1
    try:
        with zipfile.ZipFile(path) as archive:
            return max(1, sum(1 for info in archive.infolist() if not info.is_dir()))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return 1


def ingest_entry(session: IngestSession, entry: ArchiveEntry) -> IngestResult:
    """Ingest *entry* in *session*, or record its rejection there; returns its result."""
    if entry.path is None:
        result = IngestResult(entry.name, Outcome.REJECTED, entry.rejection)
        session.results.append(result)
        return result
    return session.add_file(entry.path, name=entry.name)


# --- files and folders --------------------------------------------------------


def _sniff(path: Path) -> str:
    """``"dicom"``, ``"zip"`` or ``""`` from the file's first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return ""
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:4] in ZIP_MAGIC:
        return "zip"
    return ""


def _expand_file(path: Path, name: str) -> Iterator[ArchiveEntry]:
    kind = _sniff(path)
    if kind == "zip":
        yield from _expand_zip(path, name)
    elif kind != "dicom" and name.lower().endswith(".zip"):
        yield ArchiveEntry(name, None, _("the file is named .zip but is not a zip archive (or it is damaged)"))
    else:
        # Anything else goes to the ingest, which decides whether it is DICOM.
        yield ArchiveEntry(name, path)


def _expand_directory(root: Path, name: str) -> Iterator[ArchiveEntry]:
    for folder, directories, files in os.walk(root, followlinks=False):
        directories.sort()
        here = Path(folder)
        for directory in list(directories):
            if (here / directory).is_symlink():
                directories.remove(directory)
                yield ArchiveEntry(
                    _join(name, here.relative_to(root) / directory),
                    None,
                    _("a symbolic link to a folder; it was not followed"),
                )
        for file_name in sorted(files):
            if file_name.lower() in CLUTTER:
                continue
            file_path = here / file_name
            display = _join(name, file_path.relative_to(root))
            if not file_path.is_file():
                yield ArchiveEntry(display, None, _("not a regular file (a broken link or a device)"))
                continue
            yield from _expand_file(file_path, display)


def _join(name: str, relative: Path | str) -> str:
    return f"{name}/{Path(relative).as_posix()}"


# --- zips -----------------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's path as its author wrote it; Korean Windows zips use CP949 without saying so."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    raw = info.filename.encode("cp437")
    for encoding in ("utf-8", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unsafe_path(member: str) -> bool:
    normalized = member.replace("\\", "/")
    return normalized.startswith("/") or bool(_DRIVE.match(normalized)) or ".." in normalized.split("/")


def _is_clutter(member: str) -> bool:
    parts = member.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].lower() in CLUTTER


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _member_refusal(info: zipfile.ZipInfo, member: str) -> str:
    """Why *info* is refused before reading a byte of it, or ``""``."""
    if _unsafe_path(member):
        return _("the path points outside the archive (“..” or an absolute path); the entry was not read")
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):
        if stat.S_ISLNK(mode):
            return _("a symbolic link, not a file; the entry was not read")
        if not stat.S_ISREG(mode):
            return _("not a regular file; the entry was not read")
    if info.flag_bits & 0x1:
        return _("the entry is encrypted (password-protected): unzip it yourself and upload the files")
    if member.lower().endswith(".zip"):
        return _("a zip inside the zip: unzip it first")
    if info.file_size > settings.DICOM_MAX_FILE_BYTES:
        return _("the entry is %(size)s, over the limit of %(limit)s per file") % {
            "size": _mb(info.file_size),
            "limit": _mb(settings.DICOM_MAX_FILE_BYTES),
        }
    return ""


def _expand_zip(path: Path, name: str) -> Iterator[ArchiveEntry]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        yield ArchiveEntry(name, None, _("the zip archive is damaged and cannot be opened; make the zip again"))
        return
    with archive:
        infos = archive.infolist()
        if len(infos) > settings.ZIP_MAX_ENTRIES:
            yield ArchiveEntry(
                name,
                None,
                _("the zip has %(count)d entries, more than the %(limit)d allowed; split it into smaller zips")
                % {"count": len(infos), "limit": settings.ZIP_MAX_ENTRIES},
            )
            return
        files = [info for info in infos if not info.is_dir()]
        if not files:
            yield ArchiveEntry(name, None, _("the zip archive is empty"))
            return
        total = 0
        for position, info in enumerate(files):
            member = _member_name(info)
            if _is_clutter(member):
                continue
            display = _join(name, member.replace("\\", "/").lstrip("/"))
            refusal = _member_refusal(info, member)
            if refusal:
                yield ArchiveEntry(display, None, refusal)
                continue
            temp: Path | None = None
            try:
                temp, written, refusal = _inflate(archive, info, settings.ZIP_MAX_TOTAL_BYTES - total)
                total += written
                if not refusal and _sniff(temp) == "zip":
                    refusal = _("a zip inside the zip: unzip it first")
                if refusal:
                    yield ArchiveEntry(display, None, refusal)
                else:
                    yield ArchiveEntry(display, temp)
            except _TotalExceeded:
                limit = _mb(settings.ZIP_MAX_TOTAL_BYTES)
                yield ArchiveEntry(
                    display,
                    None,
                    _("the archive expands to more than %(limit)s; this entry was not kept") % {"limit": limit},
                )
                remaining = len(files) - position - 1
                if remaining:
                    yield ArchiveEntry(
                        name,
                        None,
                        _("the archive expands to more than %(limit)s; the remaining %(count)d entries were not read")
                        % {"limit": limit, "count": remaining},
                    )
                return
            finally:
                if temp is not None:
                    temp.unlink(missing_ok=True)


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> tuple[Path, int, str]:
    """Inflate one member into a temporary file, counting bytes; returns (file, bytes written, refusal).

    Raises ``_TotalExceeded`` (after removing the file) when the member takes
    the archive past *budget*.
    """
    limit = settings.DICOM_MAX_FILE_BYTES
    max_ratio = settings.ZIP_MAX_RATIO
    compressed = max(info.compress_size, 1)
    written = 0
    refusal = ""
    handle = tempfile.NamedTemporaryFile(dir=spool_dir(), prefix="zip-", suffix=".dcm", delete=False)
    temp = Path(handle.name)
    try:
        with handle, archive.open(info) as source:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > budget:
                    raise _TotalExceeded
                if written > limit:
                    refusal = _("the entry is over the limit of %(limit)s per file") % {"limit": _mb(limit)}
                    break
                if written > RATIO_FLOOR and written / compressed > max_ratio:
                    refusal = _(
                        "the entry inflates more than %(ratio)d times its compressed size (a zip bomb?); "
                        "it was not read further"
                    ) % {"ratio": max_ratio}
                    break
                handle.write(chunk)
    except _TotalExceeded:
        temp.unlink(missing_ok=True)
        raise
    except NotImplementedError:
        refusal = _("the entry is compressed with a method that cannot be read; make the zip again with “deflate”")
    except RuntimeError as exc:
        # zipfile raises RuntimeError for encrypted members it cannot detect from the flag.
        refusal = _("the entry cannot be read (%s)") % exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        refusal = _("the entry is damaged (%s); make the zip again") % exc
    return temp, written, refusal
