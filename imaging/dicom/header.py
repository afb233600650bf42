"""Read and validate a DICOM file's header without loading its pixel data.

Django-free. ``parse_header`` is the first step of the one ingest path: it
decides whether a file can be archived at all and extracts what the index
needs, including the instance's DICOM JSON (PS3.18 F.2) with bulk data given
as BulkDataURI references instead of inline bytes.
"""

from __future__ import annotations

import base64
import re
import struct
import warnings
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
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
    return _parse_date(_text(ds, keyword, 32))


def _parse_date(raw: str) -> date | None:
    match = re.match(r"^(\d{4})\.?(\d{2})\.?(\d{2})", raw)
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _raw_converted(ds: Dataset, metadata: dict[str, Any], keyword: str) -> list[Any] | None:
    """The JSON values of a top-level element that ``_dataset_json`` converted from its raw bytes, else None.

    An element that went the pydicom way (or was read before) is a DataElement
    in ``ds._dict`` by now; one still raw was converted by ``_raw_json`` into
    exactly the values pydicom would give, or was left out as undecodable.
    """
    tag = tag_for_keyword(keyword)
    if tag is None or not isinstance(ds._dict.get(BaseTag(tag)), RawDataElement):
        return None
    element = metadata.get(f"{tag:08X}")
    return (element.get("Value") or []) if element is not None else []


def _field_text(ds: Dataset, metadata: dict[str, Any], keyword: str, limit: int = 200) -> str:
    """``_text(ds, keyword, limit)``, taken from the metadata when it was built from raw bytes."""
    values = _raw_converted(ds, metadata, keyword)
    if values is None:
        return _text(ds, keyword, limit)
    # str(PersonName) joins its groups with "="; several values are joined with "\" as _text does.
    texts = ["=".join(value.values()) if isinstance(value, dict) else str(value) for value in values]
    return "\\".join(texts).strip().replace("\x00", "")[:limit]


def _field_int(ds: Dataset, metadata: dict[str, Any], keyword: str) -> int | None:
    """``_int(ds, keyword)``, taken from the metadata when it was built from raw bytes."""
    values = _raw_converted(ds, metadata, keyword)
    if values is None:
        return _int(ds, keyword)
    if len(values) != 1:
        return None
    try:
        return int(values[0])
    except (TypeError, ValueError, OverflowError):
        return None


def _field_date(ds: Dataset, metadata: dict[str, Any], keyword: str) -> date | None:
    return _parse_date(_field_text(ds, metadata, keyword, 32))


def _uid_text(ds: Dataset, keyword: str) -> str:
    """``_text(ds, keyword)`` for a UID element, decoded from its raw bytes while it is still raw.

    The same text as pydicom's ``convert_UI`` and ``UID`` give, without
    building (and validating) a DataElement for each of the UIDs a file is
    checked for; the element stays raw for ``_dataset_json``'s fast path too.
    """
    raw = ds._dict.get(Tag(keyword))
    if isinstance(raw, RawDataElement) and raw.VR in ("UI", None) and isinstance(raw.value, bytes):
        if b"\\" not in raw.value:  # one value; several go the pydicom way
            return raw.value.decode(_DEFAULT_ENCODING).rstrip("\0 ").strip().replace("\x00", "")[:200]
    return _text(ds, keyword, 200)


def _uid(ds: Dataset, keyword: str, label: str) -> str:
    value = _uid_text(ds, keyword)
    if not value:
        raise InvalidDicom(f"missing {label} ({keyword}); the file is incomplete or not an image object")
    if len(value) > 64 or not UID_PATTERN.match(value):
        raise InvalidDicom(f"{label} ({keyword}) “{value[:70]}” is not a valid DICOM UID")
    return value


def _tag_hex(tag: BaseTag) -> str:
    return f"{tag:08X}"


def _element_json(
    element: DataElement, path: str, bulk_uri: Callable[[str], str], *, fast: bool = True
) -> dict[str, Any] | None:
    """One element as DICOM JSON, large binary values as BulkDataURI (pydicom's conversion)."""
    if element.VR == "SQ":
        items = []
        for index, item in enumerate(element.value or []):
            items.append(_dataset_json(item, f"{path}{_tag_hex(element.tag)}/{index}/", bulk_uri, fast=fast))
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


# --- DICOM JSON straight from the raw bytes ---------------------------------------------
#
# Building a pydicom DataElement (with value validation) and calling its
# ``to_json_dict`` costs ~25 µs an element, two thirds of parse_header for a CT
# slice. ``_raw_json`` converts the common cases straight from the raw element
# exactly as pydicom 3.0 would (``pydicom.values`` converters, then
# ``DataElement.to_json_dict`` and ``jsonrep.convert_to_python_number``) and
# returns None for anything else, which then goes the pydicom way: sequences,
# UN, implicit-VR private tags and ambiguous VRs, deferred values, text with
# ISO 2022 escape sequences, numbers that are not plain decimal numbers, odd
# lengths. imaging/tests/test_dicom_json.py checks both give the same JSON for
# every file in pydicom's test data.

_DEFAULT_ENCODING = "iso8859"  # pydicom's default_encoding (Latin-1) for the default character repertoire
_UNDEFINED_LENGTH = 0xFFFFFFFF
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_NUMBER_SIZES = {"H": 2, "h": 2, "L": 4, "l": 4, "f": 4, "d": 8, "q": 8, "Q": 8}
_FLOAT_NUMBER_VRS = {"FL", "FD"}
_SPLIT_VRS = {"AS", "CS", "DA", "DT", "TM"}  # values.convert_string (DA/DT/TM without datetime_conversion)
_TEXT_VRS = {"LO", "SH", "UC"}  # values.convert_text: Specific Character Set, split, each rstrip
_SINGLE_TEXT_VRS = {"LT", "ST", "UT"}  # values.convert_single_string
_LUT_DESCRIPTORS = {0x00281101, 0x00281102, 0x00281103, 0x00283002}  # pydicom adjusts their first value
_IS_ITEM = re.compile(r"[ ]*[+-]?[0-9]+[ ]*")
_DS_ITEM = re.compile(r"[ ]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ ]*")


def _encodings(ds: Dataset) -> list[str]:
    """The Python codecs pydicom decodes *ds*'s text with (as in ``Dataset.__getitem__``)."""
    encodings = ds.original_character_set or ds._character_set
    if isinstance(encodings, str):
        return [encodings]
    return list(encodings) or [_DEFAULT_ENCODING]


def _decode_text(value: bytes, encodings: list[str]) -> str | None:
    """``charset.decode_bytes`` for the common case (no escape sequence); None otherwise."""
    if b"\x1b" in value:
        return None
    try:
        return value.decode(encodings[0])
    except (UnicodeError, LookupError):
        return None


def _raw_vr(raw: RawDataElement) -> str | None:
    vr = raw.VR
    if vr is None:  # implicit VR: the dictionary's, when there is exactly one
        if raw.tag.is_private:
            return None
        try:
            vr = dictionary_VR(raw.tag)
        except KeyError:
            return None
    return str(vr)


def _raw_json(
    raw: RawDataElement, encodings: list[str], path: str, bulk_uri: Callable[[str], str]
) -> dict[str, Any] | None:
    """*raw* as DICOM JSON, or None when pydicom must convert it (see above)."""
    vr = _raw_vr(raw)
    if vr is None or vr == "SQ" or vr == "UN" or len(vr) != 2:
        return None
    value = raw.value
    if value is None:  # deferred (or absent): only the length of bulk data is needed
        if vr in BULK_VRS and raw.length != _UNDEFINED_LENGTH and raw.length > BULK_THRESHOLD:
            return {"vr": vr, "BulkDataURI": bulk_uri(f"{path}{raw.tag:08X}")}
        return None if raw.length else {"vr": vr}
    if not value:
        return {"vr": vr}
    if vr in BULK_VRS:
        if len(value) > BULK_THRESHOLD:
            return {"vr": vr, "BulkDataURI": bulk_uri(f"{path}{raw.tag:08X}")}
        return {"vr": vr, "InlineBinary": base64.b64encode(value).decode("utf-8")}
    number_format = _NUMBER_FORMATS.get(vr)
    if number_format is not None:
        size = _NUMBER_SIZES[number_format]
        if len(value) % size or raw.tag in _LUT_DESCRIPTORS:
            return None
        endian = "<" if raw.is_little_endian else ">"
        numbers = struct.unpack(f"{endian}{len(value) // size}{number_format}", value)
        kind = float if vr in _FLOAT_NUMBER_VRS else int
        return {"vr": vr, "Value": [kind(n) for n in numbers]}
    values: list[Any]
    if vr in _SPLIT_VRS:
        if vr in ("DA", "DT", "TM") and pydicom.config.datetime_conversion:
            return None
        text = value.decode(_DEFAULT_ENCODING).rstrip(" \x00")
        values = text.split("\\")
    elif vr == "UI":
        text = value.decode(_DEFAULT_ENCODING).rstrip("\0 ")
        values = text.split("\\")
    elif vr in _TEXT_VRS:
        decoded = _decode_text(value, encodings)
        if decoded is None:
            return None
        values = [item.rstrip("\0 ") for item in decoded.split("\\")]
    elif vr in _SINGLE_TEXT_VRS:
        decoded = _decode_text(value, encodings)
        if decoded is None:
            return None
        values = [decoded.rstrip("\0 ")]
    elif vr == "PN":
        return _raw_person_name(value, encodings)
    elif vr == "AE":
        values = [item.strip() for item in value.decode(_DEFAULT_ENCODING).split("\\")]
    elif vr == "UR":
        values = [value.decode(_DEFAULT_ENCODING).rstrip()]
    elif vr == "IS":
        if pydicom.config.use_IS_numpy:
            return None
        values = value.decode(_DEFAULT_ENCODING).rstrip(" \x00").split("\\")
        if not all(_IS_ITEM.fullmatch(item) for item in values):
            return None
        return {"vr": vr, "Value": [int(item) for item in values]}
    elif vr == "DS":
        if pydicom.config.use_DS_numpy or pydicom.config.use_DS_decimal:
            return None
        values = value.decode(_DEFAULT_ENCODING).strip().rstrip(" \x00").split("\\")
        if not all(_DS_ITEM.fullmatch(item) for item in values):
            return None
        return {"vr": vr, "Value": [float(item) for item in values]}
    elif vr == "AT":
        if len(value) % 4:
            return None
        endian = "<" if raw.is_little_endian else ">"
        pairs = struct.unpack(f"{endian}{len(value) // 2}H", value)
        return {"vr": vr, "Value": [f"{(pairs[i] << 16) | pairs[i + 1]:08X}" for i in range(0, len(pairs), 2)]}
    else:
        return None
    if len(values) == 1 and not values[0]:  # one empty value: VM 0
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def _raw_person_name(value: bytes, encodings: list[str]) -> dict[str, Any] | None:
    """A PN value as pydicom's ``convert_PN`` + ``to_json_dict`` give it; None for the unusual."""
    decoded = _decode_text(value.rstrip(b"\x00 "), encodings)
    if decoded is None:
        return None
    names = []
    for name in decoded.split("\\"):
        groups = name.split("=")
        while groups and not groups[-1]:
            groups.pop()
        if not groups or len(groups) > 3:  # empty, or more groups than PN has: pydicom's own handling
            return None
        json_name = {"Alphabetic": groups[0]}
        if len(groups) > 1:
            json_name["Ideographic"] = groups[1]
        if len(groups) > 2:
            json_name["Phonetic"] = groups[2]
        names.append(json_name)
    return {"vr": "PN", "Value": names}


def _dataset_json(ds: Dataset, path: str, bulk_uri: Callable[[str], str], *, fast: bool = True) -> dict[str, Any]:
    """*ds* as DICOM JSON; *fast* converts common elements from their raw bytes (same result)."""
    result: dict[str, Any] = {}
    raw_by_tag: MutableMapping[BaseTag, Any] = ds._dict  # without converting (or reading deferred) values
    encodings = _encodings(ds) if fast else []
    for tag in sorted(raw_by_tag):
        if tag in PIXEL_TAGS or tag >> 16 == 0x0002 or tag & 0xFFFF == 0:
            continue
        encoded = None
        raw = raw_by_tag[tag]
        if fast and isinstance(raw, RawDataElement):
            try:
                encoded = _raw_json(raw, encodings, path, bulk_uri)
            except Exception:  # noqa: BLE001  (anything odd goes the pydicom way below)
                encoded = None
        if encoded is None:
            try:
                element = ds[tag]
            except Exception:  # noqa: BLE001, S112  (an undecodable element is skipped, per "tolerate deviations")
                continue
            encoded = _element_json(element, path, bulk_uri, fast=fast)
        if encoded is not None:
            result[_tag_hex(tag)] = encoded
    return result


def _pixel_data_check(ds: Dataset, file_size: int, warned_eof: bool) -> tuple[str, str] | None:
    """Return (tag, VR) of the pixel data element, or None; raise if truncated."""
    raw_by_tag: MutableMapping[BaseTag, Any] = ds._dict  # the raw elements, without decoding deferred values
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


def read_dataset(source: Path | bytes, *, defer_size: int | None = DEFER_SIZE) -> tuple[Dataset, list[str]]:
    """Open *source* (a file, or its bytes) as DICOM, large values left where they are; the dataset and parse warnings.

    Bytes are read through ``BytesIO``. A file is read piece by piece, some
    hundred reads and seeks for a CT slice, and each of those system calls lets
    go of the GIL, which a busy process's other threads (hashing, fsync) then
    take: a caller that holds the bytes anyway parses them faster from memory.
    """

    def opened() -> str | BytesIO:
        return BytesIO(source) if isinstance(source, bytes) else str(source)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(opened(), defer_size=defer_size)
        except InvalidDicomError:
            # Files without the 128-byte preamble and "DICM" are still found on
            # old CDs; accept them only if they parse as a real dataset below.
            try:
                ds = pydicom.dcmread(opened(), defer_size=defer_size, force=True)
            except Exception as exc:
                raise InvalidDicom(f"not a DICOM file ({type(exc).__name__})") from exc
            if "SOPInstanceUID" not in ds and "SOPClassUID" not in ds:
                raise InvalidDicom("not a DICOM file (no DICM header and no DICOM identifiers)") from None
        except (OSError, EOFError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
            raise InvalidDicom(f"not a readable DICOM file: {exc}") from exc
    return ds, [str(w.message) for w in caught]


def parse_header(source: Path | bytes, *, dicomweb_root: str = "/dicomweb") -> Header:
    """Validate *source* as an archivable DICOM instance and describe it.

    Parameters
    ----------
    source
        A DICOM Part 10 file on local disk, or its bytes (see :func:`read_dataset`).
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
    file_size = len(source) if isinstance(source, bytes) else source.stat().st_size
    if file_size == 0:
        raise InvalidDicom("the file is empty")
    ds, parse_warnings = read_dataset(source)
    warned_eof = any("End of file reached" in w for w in parse_warnings)

    meta = getattr(ds, "file_meta", None) or Dataset()
    sop_class = _uid_text(ds, "SOPClassUID") or _text(meta, "MediaStorageSOPClassUID", 200)
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

    pixel = _pixel_data_check(ds, file_size, warned_eof)

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

    # The index fields, from the metadata just built where it came from raw bytes
    # (the same values as pydicom's, without converting the elements again).
    frames = _field_int(ds, metadata, "NumberOfFrames") or (1 if pixel is not None else 0)
    return Header(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        transfer_syntax_uid=transfer_syntax,
        patient_id=_field_text(ds, metadata, "PatientID", 64),
        issuer_of_patient_id=_field_text(ds, metadata, "IssuerOfPatientID", 64),
        patient_name=_field_text(ds, metadata, "PatientName", 400),
        patient_birth_date=_field_date(ds, metadata, "PatientBirthDate"),
        patient_sex=_field_text(ds, metadata, "PatientSex", 16),
        study_date=_field_date(ds, metadata, "StudyDate"),
        study_time=_field_text(ds, metadata, "StudyTime", 32),
        accession_number=_field_text(ds, metadata, "AccessionNumber", 64),
        study_id=_field_text(ds, metadata, "StudyID", 64),
        study_description=_field_text(ds, metadata, "StudyDescription", 200),
        referring_physician_name=_field_text(ds, metadata, "ReferringPhysicianName", 400),
        modality=_field_text(ds, metadata, "Modality", 16),
        series_number=_field_int(ds, metadata, "SeriesNumber"),
        series_description=_field_text(ds, metadata, "SeriesDescription", 200),
        body_part=_field_text(ds, metadata, "BodyPartExamined", 64),
        instance_number=_field_int(ds, metadata, "InstanceNumber"),
        number_of_frames=frames if pixel is not None else 0,
        rows=_field_int(ds, metadata, "Rows"),
        columns=_field_int(ds, metadata, "Columns"),
        metadata=metadata,
    )
