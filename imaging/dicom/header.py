"""Read and validate a DICOM file's header without loading its pixel data.

Django-free. ``parse_header`` is the first step of the one ingest path: it
decides whether a file can be archived at all and extracts what the index
needs, including the instance's DICOM JSON (PS3.18 F.2) with bulk data given
as BulkDataURI references instead of inline bytes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
UID_PATTERN = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
PIXEL_TAGS = {Tag(0x7FE00010), Tag(0x7FE00008), Tag(0x7FE00009)}
BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
# Binary values above this size are referenced, not inlined, in the metadata.
BULK_THRESHOLD = 1024
DEFER_SIZE = 4096


class InvalidDicom(Exception):
    """The file cannot be archived; ``reason`` says why in words a clerk can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DicomDirectory(InvalidDicom):
    """A DICOMDIR: the index of a CD, not an image."""


@dataclass
class Header:
    """What the archive needs to know about one DICOM file."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: date | None = None
    patient_sex: str = ""
    study_date: date | None = None
    study_time: str = ""
    accession_number: str = ""
    study_id: str = ""
    study_description: str = ""
    referring_physician_name: str = ""
    modality: str = ""
    series_number: int | None = None
    series_description: str = ""
    body_part: str = ""
    instance_number: int | None = None
    number_of_frames: int = 0
    rows: int | None = None
    columns: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _text(ds: Dataset, keyword: str, limit: int = 200) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001  (a badly encoded optional value is left out, not fatal)
        return ""
    if value is None:
        return ""
    if isinstance(value, list | pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip().replace("\x00", "")[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _date(ds: Dataset, keyword: str) -> date | None:
    raw = _text(ds, keyword, 32)
    match = re.match(r"^(\d{4})\.?(\d{2})\.?(\d{2})", raw)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _uid(ds: Dataset, keyword: str, label: str) -> str:
    value = _text(ds, keyword, 200)
    if not value:
        raise InvalidDicom(f"missing {label} ({keyword}); the file is incomplete or not an image object")
    if len(value) > 64 or not UID_PATTERN.match(value):
        raise InvalidDicom(f"{label} ({keyword}) “{value[:70]}” is not a valid DICOM UID")
    return value


def _tag_hex(tag: BaseTag) -> str:
    return f"{tag:08X}"


def _element_json(element: DataElement, path: str, bulk_uri: Callable[[str], str]) -> dict[str, Any] | None:
    """One element as DICOM JSON, large binary values as BulkDataURI."""
    if element.VR == "SQ":
        items = []
        for index, item in enumerate(element.value or []):
            items.append(_dataset_json(item, f"{path}{_tag_hex(element.tag)}/{index}/", bulk_uri))
        return {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
    if element.VR in BULK_VRS:
        length = len(element.value) if element.value is not None else 0
        if length == 0:
            return {"vr": element.VR}
        if length > BULK_THRESHOLD:
            return {"vr": element.VR, "BulkDataURI": bulk_uri(f"{path}{_tag_hex(element.tag)}")}
    try:
        return element.to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=BULK_THRESHOLD)
    except Exception:  # noqa: BLE001  (tolerate a malformed value: keep the VR, drop the value)
        return {"vr": element.VR}


def _dataset_json(ds: Dataset, path: str, bulk_uri: Callable[[str], str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for tag in sorted(ds.keys()):
        if tag in PIXEL_TAGS or tag.group == 0x0002 or tag.element == 0:
            continue
        try:
            element = ds[tag]
        except Exception:  # noqa: BLE001, S112  (an undecodable element is skipped, per "tolerate deviations")
            continue
        encoded = _element_json(element, path, bulk_uri)
        if encoded is not None:
            result[_tag_hex(tag)] = encoded
    return result


def _pixel_data_check(ds: Dataset, path: Path, file_size: int, warned_eof: bool) -> tuple[str, str] | None:
    """Return (tag, VR) of the pixel data element, or None; raise if truncated."""
    raw_by_tag: dict[BaseTag, Any] = ds._dict  # the raw elements, without decoding deferred values
    for tag in PIXEL_TAGS:
        raw = raw_by_tag.get(tag)
        if raw is None:
            continue
        if warned_eof:
            raise InvalidDicom("the file is truncated: it ends inside the pixel data")
        # Offsets of a deflated dataset are positions in the inflated stream,
        # not in the file, so the length check only holds for the others.
        if (
            isinstance(raw, RawDataElement)
            and raw.length != 0xFFFFFFFF
            and raw.value_tell is not None
            and not _is_deflated(ds)
        ):
            if raw.value_tell + raw.length > file_size:
                raise InvalidDicom(
                    f"the file is truncated: the pixel data needs {raw.value_tell + raw.length} bytes, "
                    f"the file has {file_size}"
                )
        vr = raw.VR if getattr(raw, "VR", None) else ""
        if not vr or vr == "OB or OW":
            vr = "OB" if _is_encapsulated(ds) or int(ds.get("BitsAllocated", 8) or 8) <= 8 else "OW"
        return _tag_hex(tag), str(vr)
    if warned_eof:
        raise InvalidDicom("the file is truncated: it ends before all its data")
    # An image header without pixels (e.g. a de-identified sample) is kept;
    # its preview will say "no pixel data".
    return None


def _is_deflated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return bool(syntax) and UID(str(syntax)).is_deflated


def _is_encapsulated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return bool(syntax) and UID(str(syntax)).is_encapsulated


def read_dataset(path: Path, *, defer_size: int | None = DEFER_SIZE) -> tuple[Dataset, list[str]]:
    """Open *path* as DICOM; large values stay on disk. Returns the dataset and parse warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(str(path), defer_size=defer_size)
        except InvalidDicomError:
            # Files without the 128-byte preamble and "DICM" are still found on
            # old CDs; accept them only if they parse as a real dataset below.
            try:
                ds = pydicom.dcmread(str(path), defer_size=defer_size, force=True)
            except Exception as exc:
                raise InvalidDicom(f"not a DICOM file ({type(exc).__name__})") from exc
            if "SOPInstanceUID" not in ds and "SOPClassUID" not in ds:
                raise InvalidDicom("not a DICOM file (no DICM header and no DICOM identifiers)") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
            raise InvalidDicom(f"not a readable DICOM file: {exc}") from exc
    return ds, [str(w.message) for w in caught]


def parse_header(path: Path, *, dicomweb_root: str = "/dicomweb") -> Header:
    """Validate *path* as an archivable DICOM instance and describe it.

    Parameters
    ----------
    path
        A DICOM Part 10 file on local disk.
    dicomweb_root
        URL path of the DICOMweb service, used to build BulkDataURI values.

    Returns
    -------
    Header
        Identifiers, index fields and DICOM JSON metadata.

    Raises
    ------
    InvalidDicom
        With a human-readable ``reason`` when the file is not DICOM, is
        truncated, lacks a required UID, or is a DICOMDIR.
    """
    file_size = path.stat().st_size
    if file_size == 0:
        raise InvalidDicom("the file is empty")
    ds, parse_warnings = read_dataset(path)
    warned_eof = any("End of file reached" in w for w in parse_warnings)

    meta = getattr(ds, "file_meta", None) or Dataset()
    sop_class = _text(ds, "SOPClassUID", 200) or _text(meta, "MediaStorageSOPClassUID", 200)
    if sop_class == MEDIA_STORAGE_DIRECTORY:
        raise DicomDirectory("DICOMDIR: the index of a CD, not an image; the images it lists are imported as files")
    sop_class_uid = _uid(ds, "SOPClassUID", "SOP Class UID")
    sop_instance_uid = _uid(ds, "SOPInstanceUID", "SOP Instance UID")
    study_uid = _uid(ds, "StudyInstanceUID", "Study Instance UID")
    series_uid = _uid(ds, "SeriesInstanceUID", "Series Instance UID")
    transfer_syntax = _text(meta, "TransferSyntaxUID", 64)
    if not transfer_syntax:
        # No file meta: pydicom guessed the encoding; name what it found.
        transfer_syntax = (
            ("1.2.840.10008.1.2.1" if not ds.is_implicit_VR else "1.2.840.10008.1.2")
            if ds.is_little_endian
            else "1.2.840.10008.1.2.2"
        )

    pixel = _pixel_data_check(ds, path, file_size, warned_eof)

    base = f"{dicomweb_root}/studies/{study_uid}/series/{series_uid}/instances/{sop_instance_uid}/bulkdata/"
    metadata = _dataset_json(ds, "", lambda tag_path: base + tag_path)
    # Identifying attributes always present, even when pydicom could not decode them.
    metadata["00080016"] = {"vr": "UI", "Value": [sop_class_uid]}
    metadata["00080018"] = {"vr": "UI", "Value": [sop_instance_uid]}
    metadata["0020000D"] = {"vr": "UI", "Value": [study_uid]}
    metadata["0020000E"] = {"vr": "UI", "Value": [series_uid]}
    metadata["00020010"] = {"vr": "UI", "Value": [transfer_syntax]}
    if pixel is not None:
        tag, vr = pixel
        metadata[tag] = {"vr": vr, "BulkDataURI": base + tag}

    frames = _int(ds, "NumberOfFrames") or (1 if pixel is not None else 0)
    return Header(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        transfer_syntax_uid=transfer_syntax,
        patient_id=_text(ds, "PatientID", 64),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID", 64),
        patient_name=_text(ds, "PatientName", 400),
        patient_birth_date=_date(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex", 16),
        study_date=_date(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime", 32),
        accession_number=_text(ds, "AccessionNumber", 64),
        study_id=_text(ds, "StudyID", 64),
        study_description=_text(ds, "StudyDescription", 200),
        referring_physician_name=_text(ds, "ReferringPhysicianName", 400),
        modality=_text(ds, "Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 200),
        body_part=_text(ds, "BodyPartExamined", 64),
        instance_number=_int(ds, "InstanceNumber"),
        number_of_frames=frames if pixel is not None else 0,
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        metadata=metadata,
    )
