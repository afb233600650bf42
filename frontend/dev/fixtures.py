"""Build a small test study for the viewer: one study, many modalities and transfer syntaxes.

Development aid only (not part of Django): the mock DICOMweb server in
``mock_dicomweb.py`` serves the folder this writes. It uses pydicom's own test
files (shipped in the pydicom wheel, nothing is downloaded) for the codecs
that we cannot encode here, and synthetic images for the rest:

- CT: a 40-slice synthetic phantom (HU: air, fat, soft tissue, bone, lung), uncompressed
- CT: JPEG 2000 (pydicom's 693_J2KI)
- MR: RLE, JPEG 2000 lossless and JPEG-LS lossless (MR_small)
- US: 30-frame JPEG baseline YBR_FULL_422 cine loop; palette colour
- OT: RGB JPEG lossless, RLE, JPEG baseline YBR
- NM: 12-bit JPEG extended
- DX: synthetic chest, JPEG 2000 lossless, Imager Pixel Spacing only
- PX/IO: synthetic dental panoramic (JPEG baseline) and intra-oral (MONOCHROME1)

Run: ``.venv/bin/python frontend/dev/fixtures.py [OUT_DIR]`` (default frontend/dev/.fixtures).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    generate_uid,
)

STUDY_UID = "1.2.826.0.1.3680043.8.498.1000"
PATIENT = {"PatientName": "홍^길동", "PatientID": "CN-0001", "PatientSex": "M", "PatientBirthDate": "19700102"}


def _common(ds: Dataset, *, modality: str, series_uid: str, series_number: int, description: str, number: int) -> None:
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = number
    ds.StudyDate = "20260301"
    ds.StudyTime = "093000"
    ds.StudyDescription = "ClinicNet viewer fixtures"
    ds.AccessionNumber = "A-2026-0001"
    ds.InstitutionName = "밝은내과의원"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientAge = "056Y"
    for key, value in PATIENT.items():
        setattr(ds, key, value)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID


def _new(modality: str, sop_class: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    return ds


def _mono(ds: Dataset, pixels: np.ndarray, *, bits: int, signed: bool, photometric: str = "MONOCHROME2") -> None:
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = pixels.tobytes()


def synthetic_ct(out: Path) -> None:
    series = generate_uid()
    size = 256
    yy, xx = np.mgrid[0:size, 0:size]
    cx = cy = size / 2
    for index in range(40):
        z = index * 2.5
        hu = np.full((size, size), -1000, dtype=np.int16)
        body = ((xx - cx) / 110) ** 2 + ((yy - cy) / 85) ** 2 <= 1
        hu[body] = -100  # fat
        inner = ((xx - cx) / 100) ** 2 + ((yy - cy) / 75) ** 2 <= 1
        hu[inner] = 40  # soft tissue
        for side in (-1, 1):  # lungs, shrinking towards the feet
            r = 40 - index * 0.5
            lung = ((xx - cx - side * 48) / r) ** 2 + ((yy - cy + 5) / (r * 1.2)) ** 2 <= 1
            hu[lung] = -850
        spine = (xx - cx) ** 2 + (yy - cy - 50) ** 2 <= 14**2
        hu[spine] = 700
        aorta = (xx - cx - 15) ** 2 + (yy - cy - 25) ** 2 <= 9**2
        hu[aorta] = 180
        hu = hu + (np.random.default_rng(index).normal(0, 6, hu.shape)).astype(np.int16)
        ds = _new("CT", "1.2.840.10008.5.1.4.1.1.2")
        _common(ds, modality="CT", series_uid=series, series_number=1, description="흉부 CT (합성)", number=index + 1)
        stored = (hu + 1024).astype(np.uint16)
        _mono(ds, stored, bits=12, signed=False)
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.PixelSpacing = [0.78125, 0.78125]
        ds.SliceThickness = 2.5
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-100, -100, -z]
        ds.SliceLocation = -z
        ds.FrameOfReferenceUID = STUDY_UID + ".9"
        ds.BodyPartExamined = "CHEST"
        ds.save_as(out / f"ct_{index:03d}.dcm", enforce_file_format=True)


def from_testdata(out: Path, name: str, *, series_uid: str, series_number: int, description: str, number: int) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    modality = str(getattr(ds, "Modality", "") or "OT")
    _common(
        ds,
        modality=modality,
        series_uid=series_uid,
        series_number=series_number,
        description=description,
        number=number,
    )
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    for tag in ("OverlayData",):
        ds.pop(tag, None)
    ds.save_as(out / f"{series_number:02d}_{number:02d}_{name}", enforce_file_format=True)


def synthetic_dx(out: Path) -> None:
    size = 512
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.full((size, size), 3000, dtype=np.float64)
    for side in (-1, 1):
        lung = ((xx - 256 - side * 110) / 80) ** 2 + ((yy - 250) / 160) ** 2 <= 1
        image[lung] = 900
    ribs = (np.sin(yy / 9.0) > 0.7) & (image < 1000)
    image[ribs] = 1800
    image += np.random.default_rng(7).normal(0, 40, image.shape)
    ds = _new("DX", "1.2.840.10008.5.1.4.1.1.1.1")
    _common(ds, modality="DX", series_uid=generate_uid(), series_number=20, description="흉부 PA (합성)", number=1)
    _mono(ds, np.clip(image, 0, 4095).astype(np.uint16), bits=12, signed=False)
    ds.ImagerPixelSpacing = [0.35, 0.35]
    ds.PatientOrientation = ["L", "F"]
    ds.WindowCenter = 2000
    ds.WindowWidth = 3500
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.save_as(out / "dx.dcm", enforce_file_format=True)


def synthetic_dental(out: Path) -> None:
    # Panoramic: 8-bit, JPEG baseline, as small dental clinics' units send it.
    h, w = 300, 600
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.full((h, w), 40, dtype=np.float64)
    arch = np.abs(yy - (150 + ((xx - 300) / 300) ** 2 * 60)) < 40
    image[arch] = 150
    teeth = arch & (np.sin(xx / 7.0) > 0.2)
    image[teeth] = 220
    pixels = np.clip(image + np.random.default_rng(3).normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=92)
    ds = _new("PX", "1.2.840.10008.5.1.4.1.1.1.2.1")
    _common(ds, modality="PX", series_uid=generate_uid(), series_number=30, description="파노라마 (합성)", number=1)
    _mono(ds, pixels, bits=8, signed=False)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    ds.ImagerPixelSpacing = [0.1, 0.1]
    ds.PatientOrientation = ["R", "F"]
    ds.save_as(out / "px.dcm", enforce_file_format=True)

    # Intra-oral: MONOCHROME1 (white = low), uncompressed.
    io_pixels = np.full((160, 120), 3500, dtype=np.uint16)
    io_pixels[30:130, 35:85] = 800
    ds = _new("IO", "1.2.840.10008.5.1.4.1.1.1.3.1")
    _common(ds, modality="IO", series_uid=generate_uid(), series_number=31, description="치근단 (합성)", number=1)
    _mono(ds, io_pixels, bits=12, signed=False, photometric="MONOCHROME1")
    ds.ImagerPixelSpacing = [0.02, 0.02]
    ds.save_as(out / "io.dcm", enforce_file_format=True)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / ".fixtures"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.dcm"):
        old.unlink()
    synthetic_ct(out)
    from_testdata(out, "693_J2KI.dcm", series_uid=generate_uid(), series_number=2, description="CT JPEG 2000", number=1)
    mr = generate_uid()
    for number, name in enumerate(
        ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"], 1
    ):
        from_testdata(out, name, series_uid=mr, series_number=3, description="MR RLE / J2K / JPEG-LS", number=number)
    from_testdata(
        out,
        "examples_ybr_color.dcm",
        series_uid=generate_uid(),
        series_number=4,
        description="US 동영상 (JPEG)",
        number=1,
    )
    from_testdata(
        out, "examples_palette.dcm", series_uid=generate_uid(), series_number=5, description="US palette", number=1
    )
    ot = generate_uid()
    for number, name in enumerate(["SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm", "SC_rgb_jpeg_dcmtk.dcm"], 1):
        from_testdata(out, name, series_uid=ot, series_number=6, description="RGB lossless / RLE / JPEG", number=number)
    from_testdata(
        out, "JPGExtended.dcm", series_uid=generate_uid(), series_number=7, description="NM JPEG 12-bit", number=1
    )
    synthetic_dx(out)
    synthetic_dental(out)
    print(f"{len(list(out.glob('*.dcm')))} files in {out}")


if __name__ == "__main__":
    main()
