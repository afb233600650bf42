"""Write a synthetic CT study: one series of 512 × 512 signed 16-bit axial slices, with pydicom.

Run from the repository root::

    .venv/bin/python -m bench.make_ct_study /tmp/ct-study              # 300 slices
    .venv/bin/python -m bench.make_ct_study /tmp/ct-study --slices 50 --patient-id BENCH2

or from Python (other benchmarks reuse it)::

    from bench.make_ct_study import make_ct_study
    paths = make_ct_study(Path("/tmp/ct-study"), slices=300)

Each slice is the body phantom of ``bench.render_bench`` (fat, soft tissue,
lungs, spine, aorta, table, σ 12 HU noise drawn per slice, padding outside the
reconstruction circle), stored with Rescale Intercept -1024 and Window 40/400
in Explicit VR Little Endian, about 525 KB a file, like a scanner's
uncompressed export. Patient, study and series attributes, Image Position and
Orientation, Slice Location and Instance Number are filled in so that the
study indexes, sorts and previews like a real one. The UIDs are new on every
run unless ``--study-uid`` is given.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from pydicom.uid import generate_uid

from bench.render_bench import ct_dataset, ct_phantom

SLICE_THICKNESS = 1.0


def make_ct_study(
    folder: Path,
    *,
    slices: int = 300,
    size: int = 512,
    patient_id: str = "BENCH0001",
    patient_name: str = "BENCH^CT",
    study_uid: str | None = None,
) -> list[Path]:
    """Write the study into *folder* (created) and return the slice files in order.

    Parameters
    ----------
    folder : pathlib.Path
        Where the ``CT00001.dcm`` … files go.
    slices : int
        How many axial slices (one series).
    size : int
        Rows and columns.
    patient_id, patient_name : str
        Who the study belongs to.
    study_uid : str or None
        The Study Instance UID; a new one when None.

    Returns
    -------
    list[pathlib.Path]
        The files, slice 1 first.
    """
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    frame_of_reference = generate_uid()
    now = datetime.now()
    paths = []
    for index in range(slices):
        ds = ct_dataset(ct_phantom(size, seed=index))
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.PatientBirthDate = "19600101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.AccessionNumber = "BENCH"
        ds.StudyID = "1"
        ds.StudyDescription = "Synthetic CT chest (benchmark)"
        ds.SeriesDescription = f"Axial {SLICE_THICKNESS:g} mm"
        ds.SeriesNumber = 1
        ds.InstanceNumber = index + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Manufacturer = "ClinicNet bench"
        ds.BodyPartExamined = "CHEST"
        ds.ReferringPhysicianName = ""
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = SLICE_THICKNESS
        z = -index * SLICE_THICKNESS
        ds.ImagePositionPatient = [-179.2, -179.2, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceLocation = z
        ds.KVP = 120
        path = folder / f"CT{index + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--patient-id", default="BENCH0001")
    parser.add_argument("--study-uid", default=None)
    args = parser.parse_args()
    paths = make_ct_study(
        args.folder, slices=args.slices, size=args.size, patient_id=args.patient_id, study_uid=args.study_uid
    )
    total = sum(path.stat().st_size for path in paths)
    print(f"{len(paths)} slices, {total / 1e6:.1f} MB in {args.folder}")


if __name__ == "__main__":
    main()
