"""Synthetic but realistic DICOM objects for the demo data and browser tests.

No real patient data may ship with ClinicNet, and pydicom's sample files
have no dental images, so the demo's CT series, dental panoramic (PX) and
intraoral (IO) images are drawn here. UIDs derive from a fixed root and the
arguments, so generating the same object twice gives the same bytes and the
demo loads idempotently.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
IO_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"
# Registered roots are per organisation; 2.25 is the UUID-derived arc that
# needs no registration (PS3.5 B.2).
ROOT = "2.25."


def uid(*parts: object) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return ROOT + str(int.from_bytes(digest[:16], "big"))


def _base(
    *, sop_class: str, study_key: str, series_key: str, instance: int, patient_id: str, patient_name: str, modality: str
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = UID(uid(study_key, series_key, instance))
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = UID(uid("clinicnet", "implementation"))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19650312"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = uid(study_key)
    ds.SeriesInstanceUID = uid(study_key, series_key)
    ds.StudyDate = "20261120"
    ds.StudyTime = "093000"
    ds.AccessionNumber = hashlib.sha256(study_key.encode()).hexdigest()[:10].upper()
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.Manufacturer = "ClinicNet synthetic"
    ds.ReferringPhysicianName = "이^의사"
    return ds


def _monochrome(ds: Dataset, pixels: np.ndarray, *, bits: int, signed: bool) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = pixels.astype(np.int16 if signed else np.uint16).tobytes()


def ct_slice(index: int, *, slices: int, size: int = 512, study_key: str = "demo-ct") -> Dataset:
    """One axial slice of a chest-like phantom: HU values, window 40/400."""
    ds = _base(
        sop_class=CT_IMAGE_STORAGE,
        study_key=study_key,
        series_key="axial",
        instance=index + 1,
        patient_id="DEMO-CT-001",
        patient_name="Kim^Minji=金^敏智=김^민지",
        modality="CT",
    )
    ds.StudyDescription = "CT Chest"
    ds.SeriesDescription = "Axial 1mm"
    ds.BodyPartExamined = "CHEST"
    z = -index * 1.0
    ds.ImagePositionPatient = [-size * 0.35, -size * 0.35, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = z
    ds.SliceThickness = 1.0
    ds.PixelSpacing = [0.7, 0.7]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.KVP = 120
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    cx = cy = size / 2
    phase = index / max(slices - 1, 1)
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    body = ((x - cx) / (size * 0.42)) ** 2 + ((y - cy) / (size * 0.30)) ** 2 <= 1
    hu[body] = -90  # fat
    muscle = ((x - cx) / (size * 0.39)) ** 2 + ((y - cy) / (size * 0.27)) ** 2 <= 1
    hu[muscle] = 45
    lung_r = 0.13 + 0.04 * np.sin(np.pi * phase)
    for side in (-1, 1):
        lung = ((x - cx - side * size * 0.17) / (size * lung_r)) ** 2 + ((y - cy) / (size * 0.2)) ** 2 <= 1
        hu[lung] = -850
    spine = (x - cx) ** 2 + (y - cy - size * 0.2) ** 2 <= (size * 0.045) ** 2
    hu[spine] = 700
    aorta = (x - cx + size * 0.05) ** 2 + (y - cy - size * 0.1) ** 2 <= (size * (0.025 + 0.01 * phase)) ** 2
    hu[aorta] = 180
    rng = np.random.default_rng(index)
    hu += rng.normal(0, 10, hu.shape).astype(np.float32)
    _monochrome(ds, np.clip(hu + 1024, 0, 4095), bits=12, signed=False)
    ds.PixelRepresentation = 0
    return ds


def dental_panoramic(*, study_key: str = "demo-px") -> Dataset:
    """A panoramic dental radiograph (PX): jaw arch with teeth, 2:1 aspect."""
    ds = _base(
        sop_class=DX_FOR_PRESENTATION,
        study_key=study_key,
        series_key="pano",
        instance=1,
        patient_id="DEMO-DENT-001",
        patient_name="Park^Jihoon=朴^智勳=박^지훈",
        modality="PX",
    )
    ds.StudyDescription = "Panoramic"
    ds.SeriesDescription = "PANO"
    ds.BodyPartExamined = "JAW"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = [0.1, 0.1]
    ds.PixelSpacing = [0.1, 0.1]
    ds.WindowCenter = 2048
    ds.WindowWidth = 3000
    rows, columns = 1100, 2200
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    image = np.full((rows, columns), 900.0, dtype=np.float32)
    u = (x - columns / 2) / (columns * 0.42)
    arch_y = rows * 0.42 + rows * 0.18 * u**2
    for offset in (-1, 1):  # upper and lower jaw
        band = np.abs(y - (arch_y + offset * rows * 0.12)) < rows * 0.10
        image[band & (np.abs(u) < 1)] = 2000
        for tooth in range(16):
            tx = columns / 2 + (tooth - 7.5) * columns * 0.05
            ty = arch_y + offset * rows * 0.12
            crown = ((x - tx) / (columns * 0.018)) ** 2 + ((y - ty) / (rows * 0.07)) ** 2 <= 1
            image[crown & (np.abs(u) < 1)] = 3400
    mandible = (np.abs(y - (rows * 0.78 + rows * 0.1 * u**2)) < rows * 0.06) & (np.abs(u) < 1.05)
    image[mandible] = 2600
    rng = np.random.default_rng(7)
    image += rng.normal(0, 40, image.shape).astype(np.float32)
    _monochrome(ds, np.clip(image, 0, 4095), bits=12, signed=False)
    return ds


def intraoral(*, study_key: str = "demo-io") -> Dataset:
    """An intraoral periapical radiograph (IO) with two teeth and roots."""
    ds = _base(
        sop_class=IO_FOR_PRESENTATION,
        study_key=study_key,
        series_key="periapical",
        instance=1,
        patient_id="DEMO-DENT-001",
        patient_name="Park^Jihoon=朴^智勳=박^지훈",
        modality="IO",
    )
    ds.StudyDescription = "Periapical #36"
    ds.SeriesDescription = "PA"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImagerPixelSpacing = [0.02, 0.02]
    ds.PixelSpacing = [0.02, 0.02]
    ds.WindowCenter = 2000
    ds.WindowWidth = 3600
    rows, columns = 1000, 1300
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    image = np.full((rows, columns), 600.0, dtype=np.float32)
    bone = y > rows * 0.35
    image[bone] = 1800
    for tx in (columns * 0.33, columns * 0.67):
        crown = ((x - tx) / (columns * 0.13)) ** 2 + ((y - rows * 0.3) / (rows * 0.2)) ** 2 <= 1
        image[crown] = 3600
        for root in (-1, 1):
            rx = tx + root * columns * 0.05
            in_root = (
                (np.abs(x - rx - (y - rows * 0.45) * 0.05 * root) < columns * 0.025)
                & (y > rows * 0.4)
                & (y < rows * 0.9)
            )
            image[in_root] = 2900
    rng = np.random.default_rng(11)
    image += rng.normal(0, 35, image.shape).astype(np.float32)
    _monochrome(ds, np.clip(image, 0, 4095), bits=12, signed=False)
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
