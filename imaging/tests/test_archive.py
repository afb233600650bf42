"""Expanding uploads for ingest: plain files, folders, zips of CDs, and every way a zip can be bad."""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import pytest

from imaging.archive import ArchiveEntry, count_entries, expand_upload, ingest_entry
from imaging.ingest import EntryPoint, IngestSession, Outcome, spool_dir
from imaging.testing import testdata_path
from institutions.models import Institution

CT = testdata_path("CT_small.dcm")
MR = testdata_path("MR_small.dcm")


def write_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def expand(path: Path, name: str = "") -> list[tuple[str, bool, str]]:
    """(name, has a file, rejection) per entry; checks each file exists while its entry is current."""
    seen = []
    for entry in expand_upload(path, name):
        if entry.path is not None:
            assert entry.path.is_file()
        seen.append((entry.name, entry.path is not None, entry.rejection))
    return seen


def rejection(entries: list[tuple[str, bool, str]], name: str) -> str:
    (match,) = [reason for entry_name, has_file, reason in entries if entry_name == name and not has_file]
    return match


def spool_files() -> set[str]:
    return set(os.listdir(spool_dir()))


def test_a_plain_dicom_file_passes_through_untouched() -> None:
    (entry,) = list(expand_upload(CT, "CT_small.dcm"))
    assert entry == ArchiveEntry("CT_small.dcm", CT, "")


def test_a_zip_is_recognised_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "upload.bin", {"IM0001": CT.read_bytes()})
    entries = list(expand_upload(path, "upload.bin"))
    assert [(e.name, e.rejection) for e in entries] == [("upload.bin/IM0001", "")]


def test_a_file_called_zip_that_is_not_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "study.zip"
    path.write_bytes(b"this is a text file, not a zip")
    assert expand(path) == [("study.zip", False, "the file is named .zip but is not a zip archive (or it is damaged)")]


def test_a_zip_member_is_inflated_byte_for_byte_and_removed_after_use(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "cd.zip", {"DICOM/IM0001": CT.read_bytes(), "DICOM/IM0002": MR.read_bytes()})
    before = spool_files()
    expansion = expand_upload(path, "cd.zip")
    first = next(expansion)
    assert first.name == "cd.zip/DICOM/IM0001"
    assert first.path is not None and first.path.read_bytes() == CT.read_bytes()
    second = next(expansion)
    assert not first.path.exists()  # removed as soon as the next entry was asked for
    assert second.path is not None and second.path.read_bytes() == MR.read_bytes()
    expansion.close()  # a consumer that stops early leaves nothing behind either
    assert not second.path.exists()
    assert spool_files() == before


def test_a_zip_bomb_member_is_stopped_while_inflating(tmp_path: Path, settings) -> None:
    settings.ZIP_MAX_RATIO = 100
    bomb = b"\0" * (64 * 1024 * 1024)  # deflates about 1000:1
    path = write_zip(tmp_path / "bomb.zip", {"IM0001": CT.read_bytes(), "bomb.dcm": bomb})
    entries = expand(path)
    assert entries[0] == ("bomb.zip/IM0001", True, "")
    assert "inflates more than 100 times its compressed size" in rejection(entries, "bomb.zip/bomb.dcm")


def test_a_member_over_the_size_limit_is_refused_whatever_its_header_says(tmp_path: Path, settings) -> None:
    settings.DICOM_MAX_FILE_BYTES = 20_000
    path = write_zip(tmp_path / "big.zip", {"big.dcm": os.urandom(30_000)}, zipfile.ZIP_STORED)
    assert rejection(expand(path), "big.zip/big.dcm") == (
        "the entry is 30000 bytes, over the limit of 20000 bytes per file"
    )
    # A header that lies about the size is not believed: the bytes are counted.
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    for offset in (18 + 4, data.rfind(b"PK\x01\x02") + 24):  # uncompressed size: local header, central directory
        data[offset : offset + 4] = (1000).to_bytes(4, "little")
    lying = tmp_path / "lying.zip"
    lying.write_bytes(bytes(data))
    # zipfile stops at the declared size, and the CRC of what it read does not match.
    assert "damaged (Bad CRC-32" in rejection(expand(lying), "lying.zip/big.dcm")
    assert info.file_size == 30_000


def test_the_whole_archive_stops_at_the_total_limit(tmp_path: Path, settings) -> None:
    settings.ZIP_MAX_TOTAL_BYTES = 100_000
    path = write_zip(tmp_path / "many.zip", {f"IM{n:04d}": CT.read_bytes() for n in range(5)}, zipfile.ZIP_STORED)
    entries = expand(path)
    assert [has_file for _name, has_file, _reason in entries[:2]] == [True, True]
    assert "expands to more than" in rejection(entries, "many.zip/IM0002")
    assert "the remaining 2 entries were not read" in rejection(entries, "many.zip")
    assert len(entries) == 4


def test_too_many_entries_refuse_the_zip_before_reading_any(tmp_path: Path, settings) -> None:
    settings.ZIP_MAX_ENTRIES = 3
    path = write_zip(tmp_path / "many.zip", {f"IM{n}": b"x" for n in range(4)})
    assert expand(path) == [
        ("many.zip", False, "the zip has 4 entries, more than the 3 allowed; split it into smaller zips")
    ]


@pytest.mark.parametrize("member", ["../evil.dcm", "DICOM/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm"])
def test_paths_that_climb_out_are_refused(tmp_path: Path, member: str) -> None:
    path = write_zip(tmp_path / "evil.zip", {member: CT.read_bytes(), "IM0001": CT.read_bytes()})
    entries = expand(path)
    (refused,) = [e for e in entries if not e[1]]
    assert "points outside the archive" in refused[2]
    assert ("evil.zip/IM0001", True, "") in entries


def test_a_symbolic_link_entry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("IM0001")
        link.create_system = 3  # Unix
        link.external_attr = 0o120777 << 16  # S_IFLNK
        archive.writestr(link, "/etc/passwd")
    assert expand(path) == [("link.zip/IM0001", False, "a symbolic link, not a file; the entry was not read")]


def test_a_zip_inside_the_zip_is_refused_by_name_and_by_content(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("IM0001", CT.read_bytes())
    path = write_zip(tmp_path / "outer.zip", {"inner.zip": inner.getvalue(), "disguised.dcm": inner.getvalue()})
    entries = expand(path)
    assert rejection(entries, "outer.zip/inner.zip") == "a zip inside the zip: unzip it first"
    assert rejection(entries, "outer.zip/disguised.dcm") == "a zip inside the zip: unzip it first"


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "secret.zip", {"IM0001": CT.read_bytes()}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    data[6] |= 0x1  # general purpose flag, bit 0: encrypted (local header)
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1  # and in the central directory, which zipfile reads
    path.write_bytes(bytes(data))
    assert "encrypted (password-protected)" in rejection(expand(path), "secret.zip/IM0001")


def test_a_damaged_member_is_refused_and_the_rest_still_read(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "damaged.zip", {"IM0001": CT.read_bytes(), "IM0002": MR.read_bytes()})
    data = bytearray(path.read_bytes())
    middle = 30 + len("IM0001") + 2000  # inside the first member's deflate stream
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    entries = expand(path)
    assert "damaged" in rejection(entries, "damaged.zip/IM0001")
    assert ("damaged.zip/IM0002", True, "") in entries


@pytest.mark.parametrize("content", [b"PK\x03\x04" + os.urandom(200), b"PK\x05\x06" + b"\xff" * 5])
def test_a_corrupt_zip_is_one_clear_rejection(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.zip"
    path.write_bytes(content)
    assert expand(path) == [
        ("corrupt.zip", False, "the zip archive is damaged and cannot be opened; make the zip again")
    ]


def test_a_truncated_zip_is_one_clear_rejection(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "cut.zip", {"IM0001": CT.read_bytes()})
    path.write_bytes(path.read_bytes()[:5000])
    assert expand(path) == [("cut.zip", False, "the zip archive is damaged and cannot be opened; make the zip again")]


def test_an_empty_zip_says_so(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "empty.zip", {})
    assert expand(path) == [("empty.zip", False, "the zip archive is empty")]


def test_korean_member_names_from_windows_zips_are_readable(tmp_path: Path) -> None:
    path = tmp_path / "korean.zip"
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo("placeholder")
        archive.writestr(info, CT.read_bytes())
    # Windows' built-in zip writes CP949 names without the UTF-8 flag.
    data = path.read_bytes()
    korean = "환자/영상1.dcm".encode("cp949")
    data = data.replace(b"placeholder", korean[: len("placeholder")].ljust(len("placeholder"), b"_"))
    path.write_bytes(data)
    (entry,) = expand(path, "cd.zip")
    assert entry[0].startswith("cd.zip/환자/")


def test_os_clutter_is_left_out(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "mac.zip", {"IM0001": CT.read_bytes(), "__MACOSX/._IM0001": b"\0\5\26\7", ".DS_Store": b"x"}
    )
    assert expand(path) == [("mac.zip/IM0001", True, "")]


def test_a_folder_is_walked_in_order_with_zips_expanded_once(tmp_path: Path) -> None:
    root = tmp_path / "CD"
    (root / "DICOM" / "ST1").mkdir(parents=True)
    (root / "DICOMDIR").write_bytes(testdata_path("DICOMDIR").read_bytes())
    (root / "DICOM" / "ST1" / "IM0002").write_bytes(MR.read_bytes())
    (root / "DICOM" / "ST1" / "IM0001").write_bytes(CT.read_bytes())
    write_zip(root / "more.zip", {"IM0003": CT.read_bytes(), "nested.zip": b"PK\x05\x06" + bytes(18)})
    (root / "loop").symlink_to(root, target_is_directory=True)
    entries = expand(root, "CD")
    assert entries == [
        ("CD/loop", False, "a symbolic link to a folder; it was not followed"),
        ("CD/DICOMDIR", True, ""),
        ("CD/more.zip/IM0003", True, ""),
        ("CD/more.zip/nested.zip", False, "a zip inside the zip: unzip it first"),
        ("CD/DICOM/ST1/IM0001", True, ""),
        ("CD/DICOM/ST1/IM0002", True, ""),
    ]
    assert count_entries(root) == 5


@pytest.mark.django_db
def test_a_zipped_cd_with_dicomdir_is_ingested_entry_by_entry(tmp_path: Path, clinic: Institution) -> None:
    path = write_zip(
        tmp_path / "cd.zip",
        {
            "DICOMDIR": testdata_path("DICOMDIR").read_bytes(),
            "DICOM/ST000000/SE000000/IM000000": CT.read_bytes(),
            "DICOM/ST000000/SE000001/IM000000": MR.read_bytes(),
            "../evil.dcm": CT.read_bytes(),
            "AUTORUN.INF": b"[autorun]\r\nopen=viewer.exe\r\n",
        },
    )
    with IngestSession(institution=clinic, entry_point=EntryPoint.WEB) as session:
        results = [ingest_entry(session, entry) for entry in expand_upload(path, "cd.zip")]
    outcomes = {result.name: result.outcome for result in results}
    assert outcomes == {
        "cd.zip/DICOMDIR": Outcome.SKIPPED,
        "cd.zip/DICOM/ST000000/SE000000/IM000000": Outcome.STORED,
        "cd.zip/DICOM/ST000000/SE000001/IM000000": Outcome.STORED,
        "cd.zip/../evil.dcm": Outcome.REJECTED,
        "cd.zip/AUTORUN.INF": Outcome.REJECTED,
    }
    assert session.results == results  # every entry, refused or not, has its one result in the session
    assert clinic.studies.count() == 2


def test_crc_errors_are_reported_not_raised(tmp_path: Path) -> None:
    # A stored (uncompressed) member whose bytes were changed after zipping.
    path = write_zip(tmp_path / "flip.zip", {"IM0001": CT.read_bytes()}, zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    data[30 + len("IM0001") + 500] ^= 0xFF
    path.write_bytes(bytes(data))
    reason = rejection(expand(path), "flip.zip/IM0001")
    assert "damaged" in reason and "CRC" in reason
    assert zlib.crc32(CT.read_bytes()) != 0
