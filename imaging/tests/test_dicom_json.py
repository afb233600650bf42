"""The DICOM JSON metadata built straight from raw elements is exactly what pydicom's conversion gives."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from imaging.dicom import header
from imaging.dicom.header import InvalidDicom, read_dataset
from imaging.testing import testdata_path

NOT_DICOM = (".txt", ".json", ".dump", ".gz", ".icc", ".py", ".pyc", ".md", ".jpg", ".j2k", ".png", ".bmp")


def _every_testdata_file() -> list[Path]:
    """Every file of pydicom's and pydicom-data's test data on this disk (whatever its name)."""
    import pydicom.data

    roots = [Path(pydicom.data.__file__).parent / "test_files", Path(pydicom.data.__file__).parent / "charset_files"]
    try:
        import data_store  # pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(
        path
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and not path.name.lower().endswith(NOT_DICOM) and path.name != "README"
    )


EVERY_FILE = _every_testdata_file()


def _uri(tag_path: str) -> str:
    return f"/bulk/{tag_path}"


def _both(ds_for: object) -> tuple[str, str]:
    """(fast, pydicom) JSON texts of the dataset made by *ds_for()*, each from a fresh dataset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = json.dumps(header._dataset_json(ds_for(), "", _uri, fast=True))  # type: ignore[operator]
        reference = json.dumps(header._dataset_json(ds_for(), "", _uri, fast=False))  # type: ignore[operator]
    return fast, reference


def test_there_are_hundreds_of_test_files_to_compare() -> None:
    assert len(EVERY_FILE) > 250


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda path: path.name)
def test_fast_json_is_identical_to_pydicoms_for_every_test_file(path: Path) -> None:
    def dataset() -> Dataset:
        return read_dataset(path)[0]

    try:
        dataset()
    except InvalidDicom:
        pytest.skip("not a DICOM file")
    fast, reference = _both(dataset)
    assert fast == reference


def test_most_elements_of_a_ct_header_take_the_raw_path() -> None:
    ds, _warnings = read_dataset(testdata_path("CT_small.dcm"))
    encodings = header._encodings(ds)
    raws = [
        raw
        for tag, raw in ds._dict.items()
        if isinstance(raw, RawDataElement) and tag >> 16 != 2 and tag not in header.PIXEL_TAGS
    ]
    handled = [raw for raw in raws if header._raw_json(raw, encodings, "", _uri) is not None]
    assert len(raws) > 80
    assert len(handled) >= len(raws) - 2  # only sequences go the pydicom way


def test_korean_names_with_escape_sequences_are_decoded_by_pydicom() -> None:
    path = testdata_path("chrH31.dcm")
    fast, reference = _both(lambda: read_dataset(path)[0])
    assert fast == reference
    assert "Yamada^Tarou" in fast or "\\u" in fast  # the names are there, decoded


def _written(ds: Dataset, syntax: str) -> Path:
    """*ds* written as a Part 10 file in the transfer syntax *syntax*, for reading back."""
    import tempfile

    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    handle = tempfile.NamedTemporaryFile(suffix=".dcm", delete=False)
    handle.close()
    ds.save_as(handle.name, enforce_file_format=True)
    return Path(handle.name)


def _odd_values() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", "AXIAL"]
    ds.PatientName = "홍^길동=洪^吉童=ホン^キルドン"
    ds.OtherPatientNames = ["Doe^John", "Roe^Jane=", "=Only^Ideographic"]
    ds.ReferringPhysicianName = ""
    ds.PatientID = "  leading and trailing  "
    ds.StudyDescription = "흉부 CT"
    ds.add_new(0x00081030, "LO", "a\\b \\ c")  # several LO values, each padded
    ds.ImageComments = "free text \\ with a backslash   "
    ds.InstanceNumber = "007"
    ds.add_new(0x00200012, "IS", "1.0")  # IS written as a float: pydicom's own handling
    ds.add_new(0x00280030, "DS", " 0.5\\.25 ")
    ds.add_new(0x00181050, "DS", "1e-3\\-2.5E+2\\+3")
    ds.add_new(0x00281052, "DS", "nan")  # not a plain number
    ds.add_new(0x00281053, "DS", "1\\")  # an empty second value
    ds.add_new(0x00200032, "DS", "")
    ds.Rows = 512
    ds.add_new(0x00280106, "SS", -5)
    ds.add_new(0x00181310, "US", [0, 512, 512, 0])
    ds.add_new(0x00209165, "AT", [0x00100010, 0x00080020])
    ds.add_new(0x00209167, "AT", 0x0020000D)
    ds.add_new(0x00186011, "FD", [1.5, -2.25])
    ds.add_new(0x00189327, "FL", 0.1)
    ds.add_new(0x00080201, "SH", "+0900")
    ds.add_new(0x00081090, "LO", "")
    ds.add_new(0x00400254, "LO", "trailing nulls\x00\x00")
    ds.add_new(0x00081190, "UR", "http://example.org/a b  ")
    ds.add_new(0x00080055, "AE", " AE ")
    ds.add_new(0x00400241, "AE", " STATION1 \\ STATION2")
    ds.add_new(0x00091010, "LO", "private text")
    ds.add_new(0x00091011, "OB", b"\x01\x02\x03\x04")
    ds.add_new(0x00091012, "OB", bytes(4000))
    ds.add_new(0x00091013, "UN", b"unknown")
    ds.add_new(0x00283010, "SQ", [Dataset(), Dataset()])
    ds[0x00283010].value[0].LUTExplanation = "in a sequence item"
    ds[0x00283010].value[0].add_new(0x00283002, "US", [256, 0, 16])
    ds[0x00283010].value[1].add_new(0x00283006, "OW", bytes(9000))
    ds.add_new(0x00186012, "SV", [-(2**40), 7])
    ds.add_new(0x00186013, "UV", [2**50])
    return ds


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_unusual_values_come_out_as_pydicom_gives_them(syntax: str) -> None:
    path = _written(_odd_values(), syntax)
    try:
        fast, reference = _both(lambda: pydicom.dcmread(path, defer_size=header.DEFER_SIZE))
    finally:
        path.unlink()
    assert fast == reference
    metadata = json.loads(fast)
    assert metadata["00100010"]["Value"] == [
        {"Alphabetic": "홍^길동", "Ideographic": "洪^吉童", "Phonetic": "ホン^キルドン"}
    ]
    assert metadata["00280030"]["Value"] == [0.5, 0.25]
    assert metadata["00200013"]["Value"] == [7]
    assert metadata["00209165"]["Value"] == ["00100010", "00080020"]
    if syntax != ImplicitVRLittleEndian:  # implicit: pydicom cannot tell US from OW in an item (left out)
        assert metadata["00283010"]["Value"][1]["00283006"]["BulkDataURI"] == "/bulk/00283010/1/00283006"


def test_a_number_of_the_wrong_length_is_left_out_as_pydicom_leaves_it_out() -> None:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3"
    path = _written(ds, ExplicitVRLittleEndian)
    data = path.read_bytes() + struct.pack("<HH2sH3s", 0x0028, 0x0010, b"US", 3, b"\x01\x02\x03")
    path.write_bytes(data)
    try:
        fast, reference = _both(lambda: pydicom.dcmread(path, defer_size=header.DEFER_SIZE))
    finally:
        path.unlink()
    assert fast == reference
    assert "00280010" not in json.loads(fast)


TEXT_FIELDS = {
    "patient_id": ("PatientID", 64),
    "issuer_of_patient_id": ("IssuerOfPatientID", 64),
    "patient_name": ("PatientName", 400),
    "patient_sex": ("PatientSex", 16),
    "study_time": ("StudyTime", 32),
    "accession_number": ("AccessionNumber", 64),
    "study_id": ("StudyID", 64),
    "study_description": ("StudyDescription", 200),
    "referring_physician_name": ("ReferringPhysicianName", 400),
    "modality": ("Modality", 16),
    "series_description": ("SeriesDescription", 200),
    "body_part": ("BodyPartExamined", 64),
}
INT_FIELDS = {
    "series_number": "SeriesNumber",
    "instance_number": "InstanceNumber",
    "rows": "Rows",
    "columns": "Columns",
}
DATE_FIELDS = {"patient_birth_date": "PatientBirthDate", "study_date": "StudyDate"}


def _parsed(source: Path | bytes) -> header.Header | str:
    """The header of *source*, or the reason it cannot be archived."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return header.parse_header(source)
        except InvalidDicom as exc:
            return exc.reason


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda path: path.name)
def test_index_fields_taken_from_the_metadata_are_what_pydicom_gives(path: Path) -> None:
    parsed = _parsed(path)
    if isinstance(parsed, str):
        pytest.skip("not an archivable DICOM file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = read_dataset(path)[0]
        expected: dict[str, object] = {
            field: header._text(ds, keyword, limit) for field, (keyword, limit) in TEXT_FIELDS.items()
        }
        expected |= {field: header._int(ds, keyword) for field, keyword in INT_FIELDS.items()}
        expected |= {field: header._date(ds, keyword) for field, keyword in DATE_FIELDS.items()}
    assert {field: getattr(parsed, field) for field in expected} == expected


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda path: path.name)
def test_a_header_parsed_from_the_bytes_is_the_one_parsed_from_the_file(path: Path) -> None:
    assert _parsed(path.read_bytes()) == _parsed(path)  # or the same reason why not


UID_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda path: path.name)
def test_uids_read_from_the_raw_bytes_are_what_pydicom_gives(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            raw_ds, pydicom_ds = read_dataset(path)[0], read_dataset(path)[0]
        except InvalidDicom:
            pytest.skip("not a DICOM file")
        from_raw = {keyword: header._uid_text(raw_ds, keyword) for keyword in UID_KEYWORDS}
        expected = {keyword: header._text(pydicom_ds, keyword, 200) for keyword in UID_KEYWORDS}
    assert from_raw == expected


def _raw_uid_dataset(value: bytes, vr: str | None) -> Dataset:
    """A dataset holding SOP Instance UID as a raw element with *value* (implicit VR when *vr* is None)."""
    tag = BaseTag(0x00080018)
    return Dataset({tag: RawDataElement(tag, vr, len(value), value, 0, vr is None, True)})


@pytest.mark.parametrize(
    ("value", "vr"),
    [
        (b"1.2.840.10008.5.1.4.1.1.2\x00", "UI"),  # padded with NUL, as the standard says
        (b" 1.2.3 ", None),  # padded with spaces (wrongly, at the front too), implicit VR
        (b"1.2.3\\4.5.6", "UI"),  # two values: pydicom's way
        (b"1.2.3", "LO"),  # the wrong VR: pydicom's way
        (b"", "UI"),  # empty
    ],
)
def test_a_uid_comes_out_of_unusual_raw_bytes_as_pydicom_gives_it(value: bytes, vr: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = header._text(_raw_uid_dataset(value, vr), "SOPInstanceUID", 200)
        assert header._uid_text(_raw_uid_dataset(value, vr), "SOPInstanceUID") == expected
