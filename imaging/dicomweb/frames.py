"""Frames of a stored instance, for WADO-RS ``/frames`` and pixel ``/bulkdata``.

Django-free. For uncompressed transfer syntaxes a frame is a byte range of
the file, read directly, so what a client gets is byte for byte what was
stored. Encapsulated (compressed) frames are cut out of the fragments as
they are, or decoded by pydicom to native little-endian samples when the
client only accepts ``application/octet-stream``.

Where the pixel data starts is found once per stored file (file keys carry
the content hash, so the answer never changes) and kept in a small
in-process cache: one frame then costs a seek and a read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.tag import Tag
from pydicom.uid import UID

from imaging.dicomweb.negotiation import BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

PIXEL_DATA = Tag(0x7FE00010)
NATIVE_SYNTAXES = {EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, BIG_ENDIAN}
_CACHE_SIZE = 4096


class FrameError(Exception):
    """The frames cannot be served; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PixelLayout:
    """Where and how the pixel data of one file is stored."""

    transfer_syntax: str
    value_offset: int
    value_length: int
    frames: int
    frame_bytes: int  # native only: bytes per frame; 0 when frames are not byte-aligned
    bits_allocated: int
    encapsulated: bool


_layouts: OrderedDict[str, PixelLayout] = OrderedDict()
_lock = threading.Lock()


def layout(path: Path, cache_key: str, transfer_syntax: str) -> PixelLayout:
    """The pixel layout of the file at *path* (cached under *cache_key*, the immutable storage key)."""
    with _lock:
        found = _layouts.get(cache_key)
        if found is not None:
            _layouts.move_to_end(cache_key)
            return found
    found = _read_layout(path, transfer_syntax)
    with _lock:
        _layouts[cache_key] = found
        while len(_layouts) > _CACHE_SIZE:
            _layouts.popitem(last=False)
    return found


def _read_layout(path: Path, transfer_syntax: str) -> PixelLayout:
    try:
        ds = pydicom.dcmread(str(path), defer_size=256, force=True)
    except OSError:
        raise  # a missing or unreadable stored file is the server's fault: a 500, logged
    except Exception as exc:
        raise FrameError(f"the stored file could not be parsed: {exc}") from exc
    raw = ds._dict.get(PIXEL_DATA)
    if raw is None:
        raise FrameError("the instance has no pixel data")
    syntax = UID(transfer_syntax or str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT_VR_LITTLE_ENDIAN)))
    if syntax.is_deflated:
        raise FrameError("frames of deflated files are not served one by one")
    if not isinstance(raw, RawDataElement) or raw.value_tell is None:
        raise FrameError("the pixel data could not be located in the file")
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.get("BitsAllocated") or 8)
    try:
        frames = max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        frames = 1
    frame_bits = rows * columns * samples * bits
    encapsulated = raw.length == 0xFFFFFFFF or syntax.is_encapsulated
    return PixelLayout(
        transfer_syntax=str(syntax),
        value_offset=raw.value_tell,
        value_length=raw.length,
        frames=frames,
        frame_bytes=frame_bits // 8 if frame_bits % 8 == 0 else 0,
        bits_allocated=bits,
        encapsulated=encapsulated,
    )


def stored_frame(path: Path, pixel: PixelLayout, index: int) -> bytes:
    """Frame *index* (0-based) exactly as stored: native bytes (big endian swapped) or the compressed bitstream."""
    if not 0 <= index < pixel.frames:
        raise FrameError(f"frame {index + 1} does not exist: the instance has {pixel.frames} frame(s)")
    with path.open("rb") as handle:
        handle.seek(pixel.value_offset)
        if pixel.encapsulated:
            try:
                return get_frame(handle, index, number_of_frames=pixel.frames)
            except (ValueError, KeyError, EOFError) as exc:
                raise FrameError(f"frame {index + 1} could not be cut out of the encapsulated data: {exc}") from exc
        if pixel.frame_bytes == 0:
            return _native_frame_decoded(path, index)
        handle.seek(pixel.value_offset + index * pixel.frame_bytes)
        data = handle.read(pixel.frame_bytes)
    if len(data) != pixel.frame_bytes:
        raise FrameError(f"frame {index + 1} is truncated in the stored file")
    if pixel.transfer_syntax == BIG_ENDIAN and pixel.bits_allocated in (16, 32, 64):
        # DICOMweb's octet-stream frames are little endian.
        data = np.frombuffer(data, dtype=f">u{pixel.bits_allocated // 8}").byteswap().tobytes()
    return data


def decoded_frame(path: Path, index: int) -> bytes:
    """Frame *index* decoded to native little-endian samples (Explicit VR Little Endian pixel data)."""
    try:
        array = pixel_array(str(path), index=index, raw=True)
    except Exception as exc:
        raise FrameError(f"frame {index + 1} could not be decoded: {' '.join(str(exc).split())[:300]}") from exc
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _native_frame_decoded(path: Path, index: int) -> bytes:
    """A bit-packed (1-bit) frame that does not start on a byte: unpack, then pack it alone."""
    from pydicom.pixels import pack_bits

    array = pixel_array(str(path), index=index, raw=True)
    return pack_bits(array)
