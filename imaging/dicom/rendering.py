"""Turn DICOM pixel data into 8-bit images: the one renderer for previews and DICOMweb.

Celery preview generation (a thumbnail per series, a preview per instance or
frame) and the DICOMweb ``/rendered`` and ``/thumbnail`` resources (PS3.18
§8.3.5) both come through here, so a study looks the same wherever it is shown.

The greyscale pipeline follows PS3.3 C.11 in the order the standard gives:
Modality LUT (C.11.1: Rescale Slope/Intercept or Modality LUT Sequence), VOI
(C.11.2: VOI LUT Sequence, else Window Center/Width with the LINEAR,
LINEAR_EXACT or SIGMOID function, else an automatic window), then MONOCHROME1
inversion, so that every preview reads like MONOCHROME2. Colour data (RGB,
YBR_FULL, YBR_FULL_422, PALETTE COLOR, either Planar Configuration) come out
as RGB.

For 8- and 16-bit stored values the whole pipeline is folded into one 8-bit
lookup table over every possible stored value, so a frame costs a single
``numpy.take`` however elaborate the transforms; wider or floating-point data
go through the same functions in float32.

The module knows nothing of Django: it takes a pydicom ``Dataset``, a path or
the bytes of a Part 10 file and gives back a Pillow image or encoded bytes.
Anything in the data that stops a frame from being rendered raises
:class:`RenderError`, whose ``reason`` is a sentence fit to show to a user;
mistakes in the arguments raise ``ValueError``.

Examples
--------
>>> ds = read_dataset("CT_small.dcm")  # doctest: +SKIP
>>> image = render_frame(ds, window=Window(40, 400), viewport=(256, 256))  # doctest: +SKIP
>>> jpeg = encode_image(image, "image/jpeg", quality=90)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import io
import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder  # type: ignore[attr-defined]  # re-exported without __all__
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

__all__ = [
    "SUPPORTED_MEDIA_TYPES",
    "RenderError",
    "VOILUTFunction",
    "Window",
    "encode_image",
    "number_of_frames",
    "read_dataset",
    "render",
    "render_frame",
]

SUPPORTED_MEDIA_TYPES: tuple[str, ...] = ("image/jpeg", "image/png")
"""Media types :func:`encode_image` can produce, in order of preference."""

# Share of pixels left out at each end by the automatic window. Half a percent
# ignores the odd hot pixel, metal or text overlay burnt into the image while
# keeping the tissue contrast a reader expects from a default display.
_AUTO_WINDOW_PERCENTILES = (0.5, 99.5)

# Pixels the automatic window looks at, evenly spread over the frame.
_AUTO_WINDOW_SAMPLE = 2**16

# zlib level for PNG. On a noisy 512² CT, level 1 encodes in 3.5 ms against
# 4.5 ms for Pillow's default 6, for a file 10 % larger; a rendered PNG is
# asked for to be lossless, not small.
_PNG_COMPRESS_LEVEL = 1

# Stored values wider than this go through float32 instead of a lookup table:
# a table over 2**32 values would be larger than any frame.
_MAX_LUT_BITS = 16

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Raised by pydicom's LUT helpers on malformed LUT elements. Reading tolerates
# them: a malformed Modality or VOI LUT is skipped for the next source in the
# pipeline (rescale, window, automatic window) rather than losing the preview.
_MALFORMED_LUT_ERRORS = (
    AttributeError,
    IndexError,
    KeyError,
    NotImplementedError,
    TypeError,
    ValueError,
    struct.error,
)


class RenderError(Exception):
    """The pixel data of a dataset cannot be turned into an image.

    Parameters
    ----------
    reason : str
        A sentence that says why, fit to show to a user, e.g. ``"transfer
        syntax JPEG-LS Lossless Image Compression cannot be decoded here"``.

    Attributes
    ----------
    reason : str
        The same sentence; also the exception's ``str()``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VOILUTFunction(Enum):
    """VOI LUT Function (0028,1056): how Window Center/Width map values to grey (PS3.3 C.11.2.1.2)."""

    LINEAR = "LINEAR"
    """The default piecewise-linear window of C.11.2.1.2.1, with its half-unit offsets."""

    LINEAR_EXACT = "LINEAR_EXACT"
    """A straight line from ``center - width/2`` to ``center + width/2`` (C.11.2.1.3.2)."""

    SIGMOID = "SIGMOID"
    """A logistic curve centred on the window centre (C.11.2.1.3.1)."""

    @classmethod
    def parse(cls, value: str) -> VOILUTFunction:
        """Return the function named in DICOM (``LINEAR_EXACT``) or PS3.18 (``linear-exact``) spelling.

        Parameters
        ----------
        value : str
            The name, in any case, with ``-`` or ``_`` between words.

        Returns
        -------
        VOILUTFunction
            The matching member.

        Raises
        ------
        ValueError
            If `value` names no VOI LUT function.
        """
        try:
            return cls(value.strip().upper().replace("-", "_"))
        except ValueError:
            raise ValueError(f"unknown VOI LUT function {value!r}; expected linear, linear-exact or sigmoid") from None


@dataclass(frozen=True)
class Window:
    """A VOI window: centre and width in modality units (e.g. HU), and the function between them.

    Parameters
    ----------
    center : float
        Window Center (0028,1050).
    width : float
        Window Width (0028,1051); at least 1 for LINEAR, above 0 otherwise.
    function : VOILUTFunction, optional
        VOI LUT Function (0028,1056); LINEAR by default, as in DICOM.

    Raises
    ------
    ValueError
        If a value is not finite or the width is out of range for the function.
    """

    center: float
    width: float
    function: VOILUTFunction = VOILUTFunction.LINEAR

    def __post_init__(self) -> None:
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise ValueError("window centre and width must be finite numbers")
        minimum_width = 1.0 if self.function is VOILUTFunction.LINEAR else 0.0
        if self.width < minimum_width or self.width == 0:
            raise ValueError(f"window width {self.width:g} is too small for {self.function.value}")

    @classmethod
    def parse(cls, value: str) -> Window:
        """Return the window of a PS3.18 ``window`` query parameter: ``center,width[,function]``.

        Parameters
        ----------
        value : str
            For example ``"40,400"`` or ``"40,400,sigmoid"``.

        Returns
        -------
        Window
            The window it describes.

        Raises
        ------
        ValueError
            If `value` is malformed or describes an invalid window.
        """
        parts = [part.strip() for part in value.split(",")]
        if len(parts) not in (2, 3):
            raise ValueError(f"window must be 'center,width[,function]', got {value!r}")
        try:
            center, width = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"window centre and width must be numbers, got {value!r}") from None
        function = VOILUTFunction.parse(parts[2]) if len(parts) == 3 else VOILUTFunction.LINEAR
        return cls(center, width, function)


# --------------------------------------------------------------------------- reading


def read_dataset(source: Dataset | str | os.PathLike[str] | bytes | BinaryIO) -> Dataset:
    """Return the dataset in `source`, tolerating files without a preamble or File Meta Information.

    Parameters
    ----------
    source : pydicom.dataset.Dataset | str | os.PathLike | bytes | BinaryIO
        A dataset (returned as is), the path of a DICOM file, its bytes, or a
        binary file object positioned at its start.

    Returns
    -------
    pydicom.dataset.Dataset
        The dataset, with its pixel data.

    Raises
    ------
    RenderError
        If `source` cannot be read as DICOM.
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(source)
    try:
        return pydicom.dcmread(source, force=True)
    except OSError as exc:
        raise RenderError(f"the file could not be read: {exc}") from exc
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise RenderError(f"not a readable DICOM file: {exc}") from exc


def number_of_frames(ds: Dataset) -> int:
    """Return how many frames the pixel data of `ds` holds.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        An image dataset.

    Returns
    -------
    int
        Number of Frames (0028,0008), or 1 when it is absent, empty or 0 (a
        single-frame image written by a lenient encoder).

    Raises
    ------
    RenderError
        If Number of Frames is present but not a number.
    """
    value = ds.get("NumberOfFrames")
    if value in (None, "", 0):
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        raise RenderError(f"Number of Frames {value!r} is not a number") from None
    return max(frames, 1)


# --------------------------------------------------------------------------- rendering


def render_frame(
    ds: Dataset,
    frame_index: int = 0,
    *,
    window: Window | None = None,
    viewport: tuple[int, int] | None = None,
    invert: bool = False,
) -> Image.Image:
    """Render one frame of `ds` as an 8-bit image.

    Only the requested frame is decoded, so one preview of a long cine loop
    costs one frame.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A dataset with Pixel Data, Float Pixel Data or Double Float Pixel Data.
    frame_index : int, optional
        The frame, counted from 0.
    window : Window | None, optional
        The VOI window to use instead of the dataset's own VOI LUT or window;
        ignored for colour images, which have no VOI stage.
    viewport : tuple[int, int] | None, optional
        ``(width, height)`` to scale the frame to fit in while keeping its
        aspect ratio, as PS3.18 ``viewport``; ``None`` keeps Columns × Rows.
    invert : bool, optional
        Invert the output, after the MONOCHROME1 inversion (so ``True`` on a
        MONOCHROME1 image shows its stored polarity).

    Returns
    -------
    PIL.Image.Image
        Mode ``"L"`` for greyscale, ``"RGB"`` for colour.

    Raises
    ------
    RenderError
        If `ds` has no pixel data or it cannot be decoded or interpreted.
    ValueError
        If `frame_index` or `viewport` is out of range.
    """
    if viewport is not None and (len(viewport) != 2 or min(viewport) < 1):
        raise ValueError(f"viewport must be two positive integers, got {viewport!r}")
    frames = number_of_frames(ds)
    if not 0 <= frame_index < frames:
        raise ValueError(f"frame index {frame_index} is out of range: the image has {frames} frame(s)")

    pixels, photometric = _decode_frame(ds, frame_index)
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        if pixels.ndim != 2:
            raise RenderError(f"{photometric} pixel data has {pixels.shape[-1]} samples per pixel instead of 1")
        out = _render_greyscale(ds, frame_index, pixels, window)
        if photometric == "MONOCHROME1":
            invert = not invert
    elif photometric == "PALETTE COLOR":
        out = _render_palette(ds, pixels)
    elif photometric == "RGB":
        out = _render_rgb(ds, pixels)
    else:
        raise RenderError(f"Photometric Interpretation {photometric} is not supported")

    if invert:
        out = np.subtract(255, out, dtype=np.uint8)
    image = Image.fromarray(np.ascontiguousarray(out))
    return _fit(image, viewport) if viewport is not None else image


def encode_image(image: Image.Image, media_type: str = "image/jpeg", *, quality: int = 90) -> bytes:
    """Encode `image` as JPEG or PNG.

    Parameters
    ----------
    image : PIL.Image.Image
        A ``"L"`` or ``"RGB"`` image, as :func:`render_frame` returns.
    media_type : str, optional
        ``"image/jpeg"`` (default) or ``"image/png"``; see :data:`SUPPORTED_MEDIA_TYPES`.
    quality : int, optional
        JPEG quality from 1 to 100 (PS3.18 ``quality``); ignored for PNG.

    Returns
    -------
    bytes
        The encoded image.

    Raises
    ------
    ValueError
        If `media_type` is not supported or `quality` is out of range.
    """
    buffer = io.BytesIO()
    if media_type == "image/jpeg":
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be from 1 to 100, got {quality}")
        image.save(buffer, "JPEG", quality=quality)
    elif media_type == "image/png":
        image.save(buffer, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
    else:
        raise ValueError(f"cannot encode {media_type!r}; supported: {', '.join(SUPPORTED_MEDIA_TYPES)}")
    return buffer.getvalue()


def render(
    source: Dataset | str | os.PathLike[str] | bytes | BinaryIO,
    frame_index: int = 0,
    *,
    window: Window | None = None,
    viewport: tuple[int, int] | None = None,
    invert: bool = False,
    media_type: str = "image/jpeg",
    quality: int = 90,
) -> bytes:
    """Read `source`, render one frame and encode it: the whole path from a file to a response body.

    Parameters
    ----------
    source : pydicom.dataset.Dataset | str | os.PathLike | bytes | BinaryIO
        As for :func:`read_dataset`.
    frame_index, window, viewport, invert
        As for :func:`render_frame`.
    media_type, quality
        As for :func:`encode_image`.

    Returns
    -------
    bytes
        The encoded image.

    Raises
    ------
    RenderError
        If `source` cannot be read or its pixel data cannot be rendered.
    ValueError
        If an argument is out of range.
    """
    image = render_frame(read_dataset(source), frame_index, window=window, viewport=viewport, invert=invert)
    return encode_image(image, media_type, quality=quality)


# --------------------------------------------------------------------------- decoding


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """Return the message of `exc` on one line and at most `limit` characters, for a :class:`RenderError` reason.

    pydicom lists each plugin's failure on its own line; a reason ends up in
    logs and API responses, where one line reads better.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _transfer_syntax(ds: Dataset) -> UID:
    """Return the transfer syntax of the pixel data in `ds`.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.

    Returns
    -------
    pydicom.uid.UID
        From the File Meta Information or, for a dataset read without it, the
        native syntax it was read in.

    Raises
    ------
    RenderError
        If the transfer syntax is unknown.
    """
    file_meta = getattr(ds, "file_meta", None)
    uid = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if uid:
        return UID(str(uid))
    # A file without meta information can still only hold native pixel data.
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        raise RenderError("the transfer syntax is unknown: the file has no (0002,0010) Transfer Syntax UID")
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _decode_frame(ds: Dataset, frame_index: int) -> tuple[npt.NDArray[np.generic], str]:
    """Decode one frame of `ds`.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.
    frame_index : int
        The frame, counted from 0.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns)`` or ``(rows, columns, samples)``, colour-by-pixel,
        with YBR_FULL and YBR_FULL_422 already converted to RGB.
    str
        The Photometric Interpretation of the returned array, which the
        decoder may have changed (YBR to RGB).

    Raises
    ------
    RenderError
        If there is no pixel data or it cannot be decoded.
    """
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise RenderError("no pixel data")
    syntax = _transfer_syntax(ds)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise RenderError(f"transfer syntax {syntax.name} cannot be decoded here (no decoder exists for it)") from None
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
        raise RenderError(f"transfer syntax {syntax.name} cannot be decoded here (not installed: {needs})")

    # Nothing downstream writes into the frame, so native data can stay a view on
    # the file's bytes. pydicom copies anyway (and logs a warning when asked not
    # to) for YBR conversion and for masking unused high bits.
    photometric = ds.get("PhotometricInterpretation")
    view_only = photometric not in ("YBR_FULL", "YBR_FULL_422") and ds.get("BitsStored") == ds.get("BitsAllocated")
    try:
        # pydicom annotates **kwargs with the whole DecodeOptions TypedDict instead of Unpack[...].
        pixels, properties = decoder.as_array(ds, index=frame_index, view_only=view_only)  # type: ignore[arg-type]
    except (AttributeError, KeyError) as exc:
        raise RenderError(f"the Image Pixel module is incomplete: {_one_line(exc)}") from exc
    except Exception as exc:
        # Decoder plugins raise whatever their C library reports (RuntimeError,
        # ValueError, struct.error, ...); all of it means the same to a caller.
        raise RenderError(f"the {syntax.name} pixel data could not be decoded: {_one_line(exc)}") from exc
    return pixels, str(properties.get("photometric_interpretation", ds.get("PhotometricInterpretation", "")))


# --------------------------------------------------------------------------- greyscale


@dataclass(frozen=True)
class _Rescale:
    """A linear Modality LUT: ``value * slope + intercept`` (PS3.3 C.11.1.1.2)."""

    slope: float
    intercept: float

    def apply(self, values: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
        """Return the modality values of the stored `values`, in float32."""
        out = values.astype(np.float32)
        if self.slope != 1:
            out *= np.float32(self.slope)
        if self.intercept != 0:
            out += np.float32(self.intercept)
        return out


@dataclass(frozen=True)
class _TableLUT:
    """A LUT from a sequence item: ``table[value - first_mapped]``, clamped to the table's ends (PS3.3 C.11.1.1.1)."""

    first_mapped: int
    table: npt.NDArray[np.float32]

    def apply(self, values: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
        """Return the looked-up values of `values`, in float32."""
        index = np.rint(values.astype(np.float64)) - self.first_mapped
        np.clip(index, 0, len(self.table) - 1, out=index)
        np.nan_to_num(index, copy=False)
        return self.table[index.astype(np.intp)]


def _functional_group(ds: Dataset, frame_index: int, keyword: str) -> Dataset | None:
    """Return the item of functional group `keyword` for one frame of an enhanced multi-frame image.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.
    frame_index : int
        The frame, counted from 0.
    keyword : str
        The functional group macro's sequence, e.g. ``"FrameVOILUTSequence"``.

    Returns
    -------
    pydicom.dataset.Dataset | None
        The per-frame item, else the shared one, else ``None`` (a classic
        image keeps these attributes at the top level).
    """
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame_index), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items and index < len(items):
            macro = items[index].get(keyword)
            if macro:
                return macro[0]  # type: ignore[no-any-return]  # pydicom's Sequence items are untyped
    return None


def _number(value: object) -> float | None:
    """Return the first value of a DS/IS element as a finite float, or ``None`` if it has none."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # DSfloat, IS, str or int; bad strings raise ValueError
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _lut_first_mapped(item: Dataset) -> int:
    """Return the first stored value a LUT maps, from its LUT Descriptor (may be negative)."""
    return int(item.LUTDescriptor[1])


def _modality_lut(ds: Dataset, frame_index: int) -> _Rescale | _TableLUT:
    """Return the Modality LUT of one frame: a Modality LUT Sequence, else Rescale Slope/Intercept.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.
    frame_index : int
        The frame, counted from 0.

    Returns
    -------
    _Rescale | _TableLUT
        The transform from stored values to modality values; the identity when
        the dataset has none or a malformed one.
    """
    sequence = ds.get("ModalityLUTSequence")
    if sequence:
        try:
            first = _lut_first_mapped(sequence[0])
            entries = int(sequence[0].LUTDescriptor[0]) or 2**16
            # pydicom already parses US/OW data and its byte order; let it fill a table over the LUT's domain.
            table = apply_modality_lut(np.arange(first, first + entries), ds)
            return _TableLUT(first, np.asarray(table, dtype=np.float32))
        except _MALFORMED_LUT_ERRORS:
            pass
    source = _functional_group(ds, frame_index, "PixelValueTransformationSequence") or ds
    slope = _number(source.get("RescaleSlope"))
    intercept = _number(source.get("RescaleIntercept"))
    return _Rescale(slope if slope else 1.0, intercept or 0.0)


def _is_identity(modality: _Rescale | _TableLUT) -> bool:
    """Return whether `modality` leaves stored values unchanged."""
    return isinstance(modality, _Rescale) and modality.slope == 1 and modality.intercept == 0


def _voi_lut(ds: Dataset) -> _TableLUT | None:
    """Return the first VOI LUT Sequence item as a table scaled to 0–255, or ``None``.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.

    Returns
    -------
    _TableLUT | None
        ``None`` when the dataset has no VOI LUT Sequence or a malformed one.
    """
    sequence = ds.get("VOILUTSequence")
    if not sequence:
        return None
    try:
        first = _lut_first_mapped(sequence[0])
        entries = int(sequence[0].LUTDescriptor[0]) or 2**16
        declared_bits = int(sequence[0].LUTDescriptor[2])
        table = np.asarray(apply_voi(np.arange(first, first + entries), ds), dtype=np.float32)
    except _MALFORMED_LUT_ERRORS:
        return None
    if not len(table):
        return None
    # Some writers declare 16 bits per entry but fill only 12; scaling by the
    # declared depth would then render a near-black image.
    bits = min(declared_bits, max(8, int(table.max()).bit_length()))
    table *= np.float32(255 / (2**bits - 1))
    return _TableLUT(first, table)


def _dataset_window(ds: Dataset, frame_index: int) -> Window | None:
    """Return the first Window Center/Width of one frame, or ``None`` if absent or invalid.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.
    frame_index : int
        The frame, counted from 0.

    Returns
    -------
    Window | None
        The window; an unknown VOI LUT Function is read as LINEAR.
    """
    source = _functional_group(ds, frame_index, "FrameVOILUTSequence") or ds
    center = _number(source.get("WindowCenter"))
    width = _number(source.get("WindowWidth"))
    if center is None or width is None:
        return None
    try:
        function = VOILUTFunction.parse(str(source.get("VOILUTFunction") or "LINEAR"))
    except ValueError:
        function = VOILUTFunction.LINEAR
    try:
        return Window(center, width, function)
    except ValueError:
        return None


def _apply_window(values: npt.NDArray[np.float32], window: Window) -> npt.NDArray[np.float32]:
    """Map modality values to 0–255 through `window` (PS3.3 C.11.2.1.2 and C.11.2.1.3).

    Parameters
    ----------
    values : numpy.ndarray
        Modality values, float32; overwritten.
    window : Window
        The window.

    Returns
    -------
    numpy.ndarray
        Float32 grey levels from 0 to 255, not yet rounded.
    """
    center, width = np.float32(window.center), np.float32(window.width)
    if window.function is VOILUTFunction.SIGMOID:
        values -= center
        values *= np.float32(-4.0) / width
        # Beyond ±80 the curve is flat to far below half a grey level, and float32 exp overflows at 89.
        np.clip(values, -80, 80, out=values)
        np.exp(values, out=values)
        values += np.float32(1.0)
        np.divide(np.float32(255.0), values, out=values)
        return values
    if window.function is VOILUTFunction.LINEAR:
        # C.11.2.1.2.1: x <= c - 0.5 - (w-1)/2 → 0, x > c - 0.5 + (w-1)/2 → 255, a line in between.
        center, width = center - np.float32(0.5), width - np.float32(1.0)
        if width == 0:
            # A width of exactly 1 is a threshold at c - 0.5.
            return np.where(values > center, np.float32(255.0), np.float32(0.0)).astype(np.float32)
    # (x - c) / w * 255 + 127.5, clipped: one multiply-add on the whole array.
    values -= center
    values *= np.float32(255.0) / width
    values += np.float32(127.5)
    np.clip(values, 0, 255, out=values)
    return values


def _padding_range(ds: Dataset) -> tuple[float, float] | None:
    """Return the stored values that Pixel Padding Value/Range Limit (0028,0120/0121) mark as padding.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset.

    Returns
    -------
    tuple[float, float] | None
        Inclusive ``(low, high)``, or ``None`` without usable padding elements.
    """
    value = _number(ds.get("PixelPaddingValue"))
    if value is None:
        return None
    limit = _number(ds.get("PixelPaddingRangeLimit"))
    if limit is None:
        return value, value
    return min(value, limit), max(value, limit)


def _histogram_window(
    modality_values: npt.NDArray[np.float32], counts: npt.NDArray[np.intp], *, monotonic: bool
) -> Window:
    """Return the automatic window of a histogram of stored values.

    Parameters
    ----------
    modality_values : numpy.ndarray
        The modality value of each stored value, in ascending stored-value order.
    counts : numpy.ndarray
        How many pixels hold each stored value, padding already set to 0.
    monotonic : bool
        Whether the Modality LUT keeps or reverses the order of stored values,
        as a rescale does; then the histogram is already sorted and the
        percentiles fall out of one cumulative sum.

    Returns
    -------
    Window
        As :func:`_window_between` gives for the percentiles of
        :data:`_AUTO_WINDOW_PERCENTILES`, or for the extremes when those coincide.
    """
    if not monotonic:
        # A table may map stored values in any order; sort only the values that occur.
        occupied = np.flatnonzero(counts)
        order = np.argsort(modality_values[occupied], kind="stable")
        modality_values, counts = modality_values[occupied][order], counts[occupied][order]
    cumulative = np.cumsum(counts)
    last = len(cumulative) - 1
    low_share, high_share = (share / 100 for share in _AUTO_WINDOW_PERCENTILES)
    ends = (
        modality_values[min(int(np.searchsorted(cumulative, low_share * cumulative[-1], side="right")), last)],
        modality_values[min(int(np.searchsorted(cumulative, high_share * cumulative[-1], side="left")), last)],
    )
    low, high = float(min(ends)), float(max(ends))
    if high <= low:
        occurring = modality_values[counts > 0]
        low, high = float(occurring.min()), float(occurring.max())
    return _window_between(low, high)


def _sample_window(values: npt.NDArray[np.float32]) -> Window:
    """Return the automatic window of a sample of modality values, non-finite values and padding removed.

    Parameters
    ----------
    values : numpy.ndarray
        At least one value.

    Returns
    -------
    Window
        As :func:`_window_between` gives for the percentiles of
        :data:`_AUTO_WINDOW_PERCENTILES`, or for the extremes when those coincide.
    """
    low, high = (float(v) for v in np.percentile(values, _AUTO_WINDOW_PERCENTILES))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    return _window_between(low, high)


def _window_between(low: float, high: float) -> Window:
    """Return the LINEAR_EXACT window from `low` to `high`; a width-1 window on `low` when they are equal."""
    if high <= low:
        return Window(low, 1.0, VOILUTFunction.LINEAR_EXACT)
    return Window((low + high) / 2, high - low, VOILUTFunction.LINEAR_EXACT)


def _stored_range(ds: Dataset, pixels: npt.NDArray[np.generic]) -> Window:
    """Return the LINEAR_EXACT window that shows every stored value as is, from 0 (or the signed minimum) up."""
    # A JPEG decoder may hand back 8-bit samples for data declared wider.
    bits = min(int(ds.get("BitsStored") or 8), pixels.dtype.itemsize * 8)
    if np.issubdtype(pixels.dtype, np.signedinteger):
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        low, high = 0, 2**bits - 1
    return Window((low + high) / 2, high - low, VOILUTFunction.LINEAR_EXACT)


def _render_greyscale(
    ds: Dataset, frame_index: int, pixels: npt.NDArray[np.generic], window: Window | None
) -> npt.NDArray[np.uint8]:
    """Apply the Modality LUT and VOI stages to one MONOCHROME frame (inversion is the caller's).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset, for its Modality LUT, VOI LUT and padding elements.
    frame_index : int
        The frame, for enhanced multi-frame functional groups.
    pixels : numpy.ndarray
        The decoded frame, ``(rows, columns)``.
    window : Window | None
        The caller's window, which overrides the dataset's VOI.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns)`` uint8 grey levels.
    """
    modality = _modality_lut(ds, frame_index)
    voi: Window | _TableLUT | None = window or _voi_lut(ds) or _dataset_window(ds, frame_index)
    if voi is None and _is_identity(modality) and pixels.dtype.itemsize == 1:
        # Data of 8 bits or fewer without a transform was made for display as
        # is (secondary capture, greyscale ultrasound); stretching it would
        # change what the sender saw.
        voi = _stored_range(ds, pixels)
    padding = _padding_range(ds)

    if np.issubdtype(pixels.dtype, np.integer) and pixels.dtype.itemsize * 8 <= _MAX_LUT_BITS:
        # A table of every possible stored value, in the order of the unsigned
        # view of the pixels, so that a take() on that view looks each pixel up.
        index = pixels.view(np.dtype(f"u{pixels.dtype.itemsize}"))
        if voi is None:
            stored = _every_stored_value(pixels.dtype)
            modality_values = modality.apply(stored)
            # A quarter of a 512² slice pins the percentiles to well under a
            # grey level, at a quarter of the cost of counting every pixel.
            sample = index.ravel()[:: max(1, index.size // _AUTO_WINDOW_SAMPLE)]
            counts = np.bincount(sample, minlength=len(stored))
            if padding is not None:
                padded = (stored >= padding[0]) & (stored <= padding[1])
                if counts[padded].sum() < counts.sum():  # an all-padding frame keeps its padding
                    counts[padded] = 0
            ordered_values = modality_values
            if np.issubdtype(pixels.dtype, np.signedinteger):
                # The unsigned view puts negative values last; put them first.
                half = len(stored) // 2
                counts, ordered_values = np.roll(counts, half), np.roll(modality_values, half)
            voi = _histogram_window(ordered_values, counts, monotonic=isinstance(modality, _Rescale))
            # This frame's own window: its table is not kept (it would only push out shared ones).
            table = _apply_voi(modality_values, voi)
        elif isinstance(modality, _Rescale) and isinstance(voi, Window):
            table = _window_table(pixels.dtype.str, modality, voi)
        else:
            table = _apply_voi(modality.apply(_every_stored_value(pixels.dtype)), voi)
        return np.take(table, index)

    # Wider integers and floating-point data: the same stages, pixel by pixel.
    modality_values = modality.apply(pixels)
    if voi is None:
        stride = max(1, modality_values.size // _AUTO_WINDOW_SAMPLE)
        sample = modality_values.ravel()[::stride]
        keep = np.isfinite(sample)
        if padding is not None:
            stored_sample = pixels.ravel()[::stride].astype(np.float64)
            unpadded = keep & ~((stored_sample >= padding[0]) & (stored_sample <= padding[1]))
            keep = unpadded if unpadded.any() else keep
        if not keep.any():
            raise RenderError("the pixel data holds no finite values")
        voi = _sample_window(sample[keep])
    # Not-a-number pixels show as the lowest value, like padding would.
    np.copyto(modality_values, np.float32(-np.inf), where=np.isnan(modality_values))
    return _apply_voi(modality_values, voi)


def _every_stored_value(dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """Each value of an integer *dtype* of up to 16 bits, ordered as its unsigned view counts (0, 1, … -1)."""
    unsigned = np.dtype(f"u{dtype.itemsize}")
    return np.arange(2 ** (8 * dtype.itemsize), dtype=unsigned).view(dtype)


@functools.lru_cache(maxsize=64)
def _window_table(dtype: str, modality: _Rescale, window: Window) -> npt.NDArray[np.uint8]:
    """The grey level of every stored value of *dtype* through a rescale and a window (read-only).

    A viewer asks for every slice of a series with the same rescale and window:
    the table is made once (65,536 values for 16-bit data) instead of per slice.
    """
    table = _apply_voi(modality.apply(_every_stored_value(np.dtype(dtype))), window)
    table.flags.writeable = False
    return table


def _apply_voi(modality_values: npt.NDArray[np.float32], voi: Window | _TableLUT) -> npt.NDArray[np.uint8]:
    """Return uint8 grey levels for `modality_values` through a window or a VOI LUT table.

    Parameters
    ----------
    modality_values : numpy.ndarray
        Float32 modality values; may be overwritten.
    voi : Window | _TableLUT
        The VOI stage; a table must already be scaled to 0–255.

    Returns
    -------
    numpy.ndarray
        Rounded uint8 values of the same shape.
    """
    grey = voi.apply(modality_values) if isinstance(voi, _TableLUT) else _apply_window(modality_values, voi)
    np.rint(grey, out=grey)
    return grey.astype(np.uint8)


# --------------------------------------------------------------------------- colour


def _render_rgb(ds: Dataset, pixels: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Return an RGB frame as 8 bits per sample, keeping its top bits when it has more.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset, for Bits Stored.
    pixels : numpy.ndarray
        ``(rows, columns, 3)``, colour-by-pixel.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns, 3)`` uint8.

    Raises
    ------
    RenderError
        If the frame does not have three samples per pixel.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise RenderError(f"RGB pixel data has shape {pixels.shape} instead of rows × columns × 3")
    if pixels.dtype == np.uint8:
        return pixels  # type: ignore[return-value]  # checked just above
    bits = int(ds.get("BitsStored") or pixels.dtype.itemsize * 8)
    shifted = np.right_shift(pixels.astype(np.uint64, copy=False), max(bits - 8, 0))
    return np.minimum(shifted, 255).astype(np.uint8)


def _render_palette(ds: Dataset, pixels: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Apply the Palette Color Lookup Tables of `ds` to a PALETTE COLOR frame (PS3.3 C.7.6.3.1.5).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset with the palette descriptors and data (plain or segmented).
    pixels : numpy.ndarray
        ``(rows, columns)`` stored values.

    Returns
    -------
    numpy.ndarray
        ``(rows, columns, 3)`` uint8 RGB.

    Raises
    ------
    RenderError
        If the palette is missing or malformed.
    """
    if pixels.ndim != 2:
        raise RenderError("PALETTE COLOR pixel data must have one sample per pixel")
    try:
        descriptor = ds.RedPaletteColorLookupTableDescriptor
        first, entries = int(descriptor[1]), int(descriptor[0]) or 2**16
        # pydicom parses plain and segmented palettes; have it expand the whole table once, then index into it.
        table = apply_color_lut(np.arange(first, first + entries), ds)[:, :3]
    except _MALFORMED_LUT_ERRORS as exc:
        raise RenderError(f"the palette colour lookup table is missing or malformed: {exc}") from exc
    if table.dtype != np.uint8:
        # Some writers put 8-bit entries in a 16-bit table; keep those as they are.
        table = table if table.max() <= 255 else table >> 8
        table = table.astype(np.uint8)
    index = pixels.astype(np.int64) - first
    np.clip(index, 0, len(table) - 1, out=index)
    return table[index]


# --------------------------------------------------------------------------- resizing


def _fit(image: Image.Image, viewport: tuple[int, int]) -> Image.Image:
    """Scale `image` to fit inside `viewport`, keeping its aspect ratio.

    Downscaling first averages whole blocks of pixels with ``Image.reduce``,
    which is cheap and the right anti-aliasing filter for an integer factor,
    and then resamples what is left with Lanczos; a 512² slice to a 256²
    thumbnail is a single reduce.

    Parameters
    ----------
    image : PIL.Image.Image
        The rendered frame.
    viewport : tuple[int, int]
        ``(width, height)``, both at least 1.

    Returns
    -------
    PIL.Image.Image
        The scaled image; `image` itself if it already fits exactly.
    """
    width, height = image.size
    scale = min(viewport[0] / width, viewport[1] / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == image.size:
        return image
    if scale < 1:
        factor = min(width // size[0], height // size[1])
        if factor >= 2:
            image = image.reduce(factor)
        if image.size == size:
            return image
        return image.resize(size, Image.Resampling.LANCZOS)
    return image.resize(size, Image.Resampling.BICUBIC)
