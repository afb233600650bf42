"""Time the DICOM renderer on a synthetic 512 × 512 CT slice, from the bytes of a file to an encoded image.

Run from the repository root::

    .venv/bin/python -m bench.render_bench            # 300 runs per case
    .venv/bin/python -m bench.render_bench --runs 1000

Each case starts from the bytes of a Part 10 file already in memory, so it
measures parsing, decoding, the Modality LUT and VOI stages, resizing and
encoding, not the disk. The slice is written with pydicom into a temporary
folder first: signed 16-bit stored values, Rescale Intercept -1024, a body
outline with soft tissue, fat, lungs, spine and contrast-filled vessels,
quantum noise, and padding outside the reconstruction circle, windowed 40/400
as a soft-tissue preset would be. The JPEG 2000 case compresses that slice
losslessly with pylibjpeg-openjpeg; when the encoder is missing it falls back
to pydicom's JPEG2000.dcm test file and says so.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless, generate_uid

from imaging.dicom.rendering import Window, encode_image, read_dataset, render, render_frame

SIZE = 512
PADDING_STORED = -2000  # stored value outside the reconstruction circle: -3024 HU after the intercept
_SIGMOID = Window.parse("40,400,sigmoid")


def ct_phantom(size: int = SIZE, seed: int = 0) -> np.ndarray:
    """Return a body-like axial CT slice in HU (int16), padded outside the field of view.

    Parameters
    ----------
    size : int
        Rows and columns.
    seed : int
        Seed of the noise, so every run times the same image.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` int16 Hounsfield units; padding is ``PADDING_STORED - 1024``.
    """
    y, x = np.mgrid[:size, :size] / size - 0.5

    def ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1

    hu = np.full((size, size), -1000.0)
    hu[ellipse(0, 0.02, 0.42, 0.32)] = -100  # subcutaneous fat
    hu[ellipse(0, 0.02, 0.38, 0.28)] = 40  # soft tissue
    hu[ellipse(-0.17, -0.02, 0.12, 0.18)] = -850  # lungs
    hu[ellipse(0.17, -0.02, 0.12, 0.18)] = -850
    hu[ellipse(0, 0.18, 0.06, 0.06)] = 700  # vertebral body
    hu[ellipse(0, 0.18, 0.035, 0.035)] = 250  # cancellous bone
    hu[ellipse(0.03, -0.02, 0.04, 0.04)] = 180  # contrast-filled aorta
    hu[ellipse(-0.04, -0.1, 0.07, 0.05)] = 45  # heart
    hu[ellipse(0, 0.39, 0.4, 0.015)] = 300  # table, under the patient's back
    rng = np.random.default_rng(seed)
    hu += rng.normal(0, 12, hu.shape)
    hu[x**2 + y**2 > 0.25] = PADDING_STORED - 1024
    return np.rint(hu).astype(np.int16)


def ct_dataset(hu: np.ndarray) -> Dataset:
    """Return a CT Image dataset holding `hu` as signed stored values with intercept -1024.

    Parameters
    ----------
    hu : numpy.ndarray
        ``(rows, columns)`` int16 Hounsfield units.

    Returns
    -------
    pydicom.dataset.Dataset
        With File Meta Information, Explicit VR Little Endian.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelPaddingValue = PADDING_STORED
    ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.int16).tobytes()
    return ds


def jpeg2000_file(ds: Dataset, folder: Path) -> tuple[bytes, str]:
    """Return the bytes of `ds` compressed as lossless JPEG 2000, and where they came from.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The uncompressed slice; left unchanged.
    folder : pathlib.Path
        Where to write the file.

    Returns
    -------
    bytes
        The Part 10 file.
    str
        What the file is, for the report.
    """
    compressed = pydicom.dcmread(_save(ds, folder / "ct.dcm"))
    try:
        compressed.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    except (RuntimeError, ValueError, ImportError) as exc:
        from pydicom.data import get_testdata_file

        path = get_testdata_file("JPEG2000.dcm", download=False)
        if path is None:
            raise SystemExit(f"cannot make a JPEG 2000 slice ({exc}) and pydicom's JPEG2000.dcm is missing") from exc
        return Path(path).read_bytes(), f"pydicom's JPEG2000.dcm (encoder unavailable: {exc})"
    path = _save(compressed, folder / "ct_j2k.dcm")
    return path.read_bytes(), f"the same slice, JPEG 2000 lossless ({path.stat().st_size // 1024} KiB)"


def rle_file(ds: Dataset, folder: Path) -> bytes:
    """Return the bytes of `ds` compressed as RLE Lossless (pydicom's own encoder)."""
    compressed = pydicom.dcmread(_save(ds, folder / "ct.dcm"))
    compressed.compress(RLELossless)
    return _save(compressed, folder / "ct_rle.dcm").read_bytes()


def _save(ds: Dataset, path: Path) -> Path:
    """Write `ds` as a Part 10 file at `path` and return the path."""
    ds.save_as(path, enforce_file_format=True)
    return path


def time_cases(actions: list[Callable[[], object]], runs: int, rounds: int = 10) -> list[tuple[float, float]]:
    """Return the median and 95th percentile of `runs` calls of each action, in milliseconds.

    The runs are taken in `rounds` interleaved slices, so that a burst of load
    from elsewhere on a shared machine spreads over every case instead of
    landing on whichever ran at the time.

    Parameters
    ----------
    actions : list[Callable[[], object]]
        The work to time; each is called a few times first to warm caches.
    runs : int
        How many timed calls of each.
    rounds : int
        Over how many interleaved slices to spread them.

    Returns
    -------
    list[tuple[float, float]]
        ``(median, p95)`` in ms, one per action.
    """
    samples: list[list[float]] = [[] for _ in actions]
    for action in actions:
        for _ in range(10):
            action()
    per_round = [runs // rounds + (1 if index < runs % rounds else 0) for index in range(rounds)]
    for count in per_round:
        for action, timings in zip(actions, samples, strict=True):
            for _ in range(count):
                start = time.perf_counter_ns()
                action()
                timings.append((time.perf_counter_ns() - start) / 1e6)
    results = []
    for timings in samples:
        timings.sort()
        results.append((statistics.median(timings), timings[max(0, math.ceil(0.95 * len(timings)) - 1)]))
    return results


def machine() -> str:
    """Return the CPU model, core count and Python/library versions, for the report."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import PIL

    return (
        f"CPU: {model}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"numpy {np.__version__}, pydicom {pydicom.__version__}, Pillow {PIL.__version__}"
    )


def main(argv: list[str] | None = None) -> None:
    """Write the slices, time each case and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed runs per case (at least 200 for the README)")
    args = parser.parse_args(argv)

    window = Window(40, 400)
    with tempfile.TemporaryDirectory(prefix="render-bench-") as tmp:
        folder = Path(tmp)
        ds = ct_dataset(ct_phantom())
        raw = _save(ds, folder / "ct.dcm").read_bytes()
        j2k, j2k_source = jpeg2000_file(ds, folder)
        rle = rle_file(ds, folder)

    parsed = read_dataset(raw)
    full = render_frame(parsed)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("bytes → 256 px JPEG thumbnail (file's window 40/400)", lambda: render(raw, viewport=(256, 256))),
        ("bytes → 256 px JPEG thumbnail (automatic window)", lambda: _auto(raw)),
        (
            "bytes → 256 px JPEG thumbnail (window=40,400,sigmoid)",
            lambda: render(raw, window=_SIGMOID, viewport=(256, 256)),
        ),
        ("bytes → 512 px JPEG, quality 90", lambda: render(raw, window=window)),
        ("bytes → 512 px PNG", lambda: render(raw, window=window, media_type="image/png")),
        ("bytes → 200 px JPEG (non-integer scale: reduce + Lanczos)", lambda: render(raw, viewport=(200, 200))),
        ("RLE bytes → 256 px JPEG thumbnail", lambda: render(rle, viewport=(256, 256))),
        ("JPEG 2000 bytes → 256 px JPEG thumbnail", lambda: render(j2k, viewport=(256, 256))),
        ("stages: bytes → Dataset (dcmread)", lambda: read_dataset(raw)),
        ("stages: Dataset → 512 px 8-bit image", lambda: render_frame(parsed)),
        ("stages: 512 px image → JPEG", lambda: encode_image(full)),
        ("stages: 512 px image → PNG", lambda: encode_image(full, "image/png")),
    ]

    print(machine())
    print(f"Command: {shlex.join([Path(sys.executable).name, '-m', 'bench.render_bench', *sys.argv[1:]])}")
    print(f"Slice: {SIZE}×{SIZE} CT, int16, intercept -1024, padding {PADDING_STORED}; JPEG 2000: {j2k_source}")
    print(f"Runs per case: {args.runs}\n")
    print("| case | median ms | p95 ms |")
    print("|---|---:|---:|")
    figures = time_cases([action for _, action in cases], args.runs)
    for (name, _), (median, p95) in zip(cases, figures, strict=True):
        print(f"| {name} | {median:.2f} | {p95:.2f} |")


def _auto(raw: bytes) -> bytes:
    """Render `raw` with the automatic window, as for a file that has none."""
    ds = read_dataset(raw)
    del ds.WindowCenter, ds.WindowWidth
    return encode_image(render_frame(ds, viewport=(256, 256)))


if __name__ == "__main__":
    main()
