"""The DICOM renderer: PS3.3 greyscale and colour pipelines, decoding, resizing and encoding.

Real files come from pydicom's own test data and from pydicom-data
(requirements.txt); small synthetic datasets pin exact values where the
standard gives a formula. Nothing here needs the database.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import MPEG2MPML, ExplicitVRLittleEndian, RLELossless, SecondaryCaptureImageStorage, generate_uid

from imaging.dicom import rendering
from imaging.dicom.rendering import (
    RenderError,
    VOILUTFunction,
    Window,
    encode_image,
    number_of_frames,
    read_dataset,
    render,
    render_frame,
)

# Files that cannot be rendered, and why. Anything else with pixel data must render.
EXPECTED_ERRORS = {
    "JPEG-lossy.dcm": "could not be decoded",  # a known-corrupt 12-bit JPEG: misplaced marker
    "JPEG2000-embedded-sequence-delimiter.dcm": "could not be decoded",
    "MR_truncated.dcm": "less than expected",
    "badVR.dcm": "Number of Frames '1A' is not a number",
    "meta_missing_tsyntax.dcm": "Image Pixel module is incomplete",
    "nested_priv_SQ.dcm": "Image Pixel module is incomplete",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "no pixel data",
}

# Files whose rendering is rightly almost uniform: 16×16 crops of a CT series with every
# pixel above the file's own window 30/100, and a scan of an almost blank white page.
NEARLY_UNIFORM = {
    "17136",
    "17166",
    "17196",
    "SC_jpeg_no_color_transform.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
}


@pytest.fixture(autouse=True)
def quiet_pydicom() -> Iterator[None]:
    """pydicom warns about each deviation it tolerates in its test files; they are the point here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def sample_path(name: str) -> str:
    """Return the path of a pydicom test file, never going to the network for it."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is in pydicom-data, which is not installed")
    return str(path)


def image_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    frames: int | None = None,
    planar_configuration: int = 0,
    **elements: object,
) -> Dataset:
    """Return an Explicit VR Little Endian image dataset holding `pixels` with the given Image Pixel values.

    `pixels` is ``(rows, columns[, 3])``, or ``(frames, rows, columns[, 3])`` when `frames` is given,
    always colour-by-pixel; `planar_configuration` 1 stores it colour-by-plane.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    frame_shape = pixels.shape[1:] if frames else pixels.shape
    ds.Rows, ds.Columns = frame_shape[:2]
    ds.SamplesPerPixel = frame_shape[2] if len(frame_shape) == 3 else 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(np.issubdtype(pixels.dtype, np.signedinteger))
    if frames:
        ds.NumberOfFrames = frames
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = planar_configuration
        if planar_configuration == 1:
            pixels = np.moveaxis(pixels, -1, -3)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def ct_slice(hu: list[int], **elements: object) -> Dataset:
    """Return a one-row signed 16-bit CT dataset with Rescale Intercept -1024 holding `hu`."""
    stored = np.array([hu], dtype=np.int16) + 1024
    return image_dataset(stored, RescaleIntercept=-1024, RescaleSlope=1, **elements)


def grey(
    ds: Dataset,
    frame_index: int = 0,
    *,
    window: Window | None = None,
    viewport: tuple[int, int] | None = None,
    invert: bool = False,
) -> np.ndarray:
    """Return the rendered grey levels of `ds` as an int array, for arithmetic without uint8 wrap-around."""
    image = render_frame(ds, frame_index, window=window, viewport=viewport, invert=invert)
    assert image.mode == "L"
    return np.asarray(image).astype(int)


def pixel_files() -> list[str]:
    """Return every file of pydicom's test data and pydicom-data that holds pixel data, by header only."""
    paths = []
    for path in sorted(get_testdata_files()):
        if os.path.isdir(path) or path.endswith((".txt", ".json", ".dump", ".gz", ".icc", "README")):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                ds = pydicom.dcmread(path, force=True, defer_size=64)
        except Exception:  # noqa: BLE001 - a file pydicom cannot even parse has no pixel data to try
            continue
        if any(keyword in ds for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            paths.append(path)
    return paths


def short_name(path: str) -> str:
    return Path(path).name


# --------------------------------------------------------------------------- every test file


@pytest.mark.parametrize("path", pixel_files(), ids=short_name)
def test_every_test_file_with_pixel_data_renders_or_says_why_not(path: str) -> None:
    name = Path(path).name
    try:
        ds = read_dataset(path)
        image = render_frame(ds)
    except RenderError as exc:
        assert exc.reason.strip(), "a RenderError must carry a reason"
        assert "\n" not in exc.reason
        assert name in EXPECTED_ERRORS, f"{name} should render but: {exc.reason}"
        assert EXPECTED_ERRORS[name] in exc.reason
        return

    assert name not in EXPECTED_ERRORS, f"{name} renders now; drop it from EXPECTED_ERRORS"
    assert image.size == (ds.Columns, ds.Rows)
    colour = ds.PhotometricInterpretation not in ("MONOCHROME1", "MONOCHROME2")
    assert image.mode == ("RGB" if colour else "L")
    if name not in NEARLY_UNIFORM:
        assert np.asarray(image).std() > 1, f"{name} rendered blank"


def test_files_without_pixel_data_raise_no_pixel_data() -> None:
    for name in ("rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm"):
        with pytest.raises(RenderError) as caught:
            render_frame(read_dataset(sample_path(name)))
        assert caught.value.reason == "no pixel data"
        assert str(caught.value) == "no pixel data"


def test_a_truncated_file_raises_render_error() -> None:
    data = Path(sample_path("CT_small.dcm")).read_bytes()
    for cut in (len(data) - 1000, 1500, 200, 10):
        with pytest.raises(RenderError) as caught:
            render(data[:cut])
        assert caught.value.reason


def test_bytes_that_are_not_dicom_raise_render_error() -> None:
    with pytest.raises(RenderError):
        render(b"\x89PNG\r\n\x1a\n" + bytes(300))


def test_a_transfer_syntax_without_any_decoder_raises_a_clear_reason() -> None:
    ds = read_dataset(sample_path("MR_small.dcm"))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    with pytest.raises(RenderError, match="transfer syntax MPEG2 Main Profile / Main Level cannot be decoded here"):
        render_frame(ds)


def test_a_transfer_syntax_whose_plugin_is_not_installed_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class NoPlugin:
        is_available = False
        missing_dependencies = ["pyjpegls - requires numpy and pyjpegls>=1.2"]

    monkeypatch.setattr(rendering, "get_decoder", lambda uid: NoPlugin())
    with pytest.raises(RenderError) as caught:
        render_frame(read_dataset(sample_path("MR_small_jpeg_ls_lossless.dcm")))
    assert caught.value.reason == (
        "transfer syntax JPEG-LS Lossless Image Compression cannot be decoded here "
        "(not installed: pyjpegls - requires numpy and pyjpegls>=1.2)"
    )


# --------------------------------------------------------------------------- compressed syntaxes


@pytest.mark.parametrize(
    "compressed",
    ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"],
)
def test_lossless_and_big_endian_copies_render_exactly_like_the_original(compressed: str) -> None:
    original = grey(read_dataset(sample_path("MR_small.dcm")))
    assert np.array_equal(grey(read_dataset(sample_path(compressed))), original)


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("SC_rgb_rle.dcm", 0),  # RLE
        ("SC_rgb_jpeg_gdcm.dcm", 0),  # JPEG lossless, process 14
        ("SC_rgb_gdcm_KY.dcm", 0),  # JPEG 2000
        ("SC_rgb_2frame.dcm", 0),
        ("SC_rgb_16bit.dcm", 0),  # top 8 of 16 bits
        ("SC_ybr_full_uncompressed.dcm", 6),  # YBR_FULL converted to RGB, rounding twice
        ("SC_ybr_full_422_uncompressed.dcm", 6),
        ("SC_rgb_jpeg_dcmtk.dcm", 12),  # JPEG baseline, YBR_FULL
        ("SC_rgb_dcmtk_+eb+cy+s2.dcm", 12),  # JPEG baseline, YBR_FULL_422
    ],
)
def test_colour_variants_render_as_the_same_rgb_image(name: str, tolerance: int) -> None:
    reference = np.asarray(render_frame(read_dataset(sample_path("SC_rgb.dcm")))).astype(int)
    image = render_frame(read_dataset(sample_path(name)))
    assert image.mode == "RGB"
    difference = np.abs(np.asarray(image).astype(int) - reference)
    assert np.percentile(difference, 99) <= tolerance


def test_jpeg_2000_greyscale_renders() -> None:
    image = render_frame(read_dataset(sample_path("JPEG2000.dcm")))
    assert (image.mode, image.size) == ("L", (256, 1024))
    assert np.asarray(image).std() > 20


# --------------------------------------------------------------------------- Modality LUT and VOI


def test_hounsfield_units_map_through_a_soft_tissue_window() -> None:
    ds = ct_slice([-1000, -160, -159, 40, 239, 240, 3000])
    assert grey(ds, window=Window(40, 400)).tolist() == [[0, 0, 1, 128, 255, 255, 255]]


def test_slices_with_the_same_rescale_and_window_share_one_table_and_still_differ_by_rescale() -> None:
    rendering._window_table.cache_clear()
    first = ct_slice([-1000, -160, 40, 240])
    again = ct_slice([40, 239, -159, 3000])
    assert grey(first, window=Window(40, 400)).tolist() == [[0, 0, 128, 255]]
    assert grey(again, window=Window(40, 400)).tolist() == [[128, 255, 1, 255]]
    assert rendering._window_table.cache_info().hits == 1
    # Another intercept is another table: 0 HU stored as 1064 under an intercept of -1064.
    shifted = image_dataset(np.array([[1064]], dtype=np.int16), RescaleIntercept=-1064, RescaleSlope=1)
    assert grey(shifted, window=Window(40, 400)).tolist() == grey(ct_slice([0]), window=Window(40, 400)).tolist()
    assert rendering._window_table.cache_info().misses == 2
    # A frame's own automatic window is not kept: it would only push out the shared tables.
    grey(ct_slice([-1000, 40, 240]))
    assert rendering._window_table.cache_info().currsize == 2


def test_the_files_own_window_is_used_when_the_caller_gives_none() -> None:
    ds = ct_slice([-1000, 40, 240], WindowCenter=40, WindowWidth=400)
    assert grey(ds).tolist() == [[0, 128, 255]]


def test_the_first_of_several_windows_in_the_file_is_used() -> None:
    ds = ct_slice([-1000, 40, 240], WindowCenter=[40, -600], WindowWidth=[400, 1500])
    assert grey(ds).tolist() == [[0, 128, 255]]


def test_a_callers_window_replaces_the_files() -> None:
    ds = ct_slice([-600, 40, 240], WindowCenter=40, WindowWidth=400)
    lung = grey(ds, window=Window(-600, 1500))
    assert lung.tolist() != grey(ds).tolist()
    assert lung[0, 0] == 128


def test_a_rescale_slope_is_applied_before_the_window() -> None:
    stored = np.array([[0, 100, 200]], dtype=np.uint16)
    ds = image_dataset(stored, RescaleSlope=2.5, RescaleIntercept=-250)  # modality values -250, 0, 250
    assert grey(ds, window=Window(0, 500, VOILUTFunction.LINEAR_EXACT)).tolist() == [[0, 128, 255]]


def test_signed_12_bit_data_in_16_bits_reads_the_same_with_or_without_sign_extension() -> None:
    values = np.array([[-2048, -1, 0, 2047]], dtype=np.int16)
    sign_extended = image_dataset(values, bits_stored=12)
    high_bits_clear = image_dataset((values.view(np.uint16) & 0x0FFF).view(np.int16), bits_stored=12)
    window = Window(0, 4096, VOILUTFunction.LINEAR_EXACT)
    expected = [[0, 127, 128, 255]]
    assert grey(sign_extended, window=window).tolist() == expected
    assert grey(high_bits_clear, window=window).tolist() == expected


def test_linear_exact_and_sigmoid_follow_the_ps3_3_formulas() -> None:
    hu = [-300, -100, 0, 40, 100, 300]
    ds = ct_slice(hu)
    exact = grey(ds, window=Window(40, 400, VOILUTFunction.LINEAR_EXACT))[0]
    sigmoid = grey(ds, window=Window(40, 400, VOILUTFunction.SIGMOID))[0]
    for x, got_exact, got_sigmoid in zip(hu, exact, sigmoid, strict=True):
        assert got_exact == round(min(max((x - 40) / 400 + 0.5, 0), 1) * 255)
        assert got_sigmoid == round(255 / (1 + math.exp(-4 * (x - 40) / 400)))
    assert exact.tolist() != sigmoid.tolist()


def test_sigmoid_far_outside_the_window_saturates_without_overflow() -> None:
    ds = ct_slice([-3000, 3000])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert grey(ds, window=Window(40, 10, VOILUTFunction.SIGMOID)).tolist() == [[0, 255]]


def test_a_linear_window_of_width_one_is_a_threshold() -> None:
    ds = ct_slice([39, 40, 41])
    assert grey(ds, window=Window(40, 1)).tolist() == [[0, 255, 255]]


def test_the_file_sigmoid_function_is_honoured() -> None:
    linear = ct_slice([0, 100], WindowCenter=40, WindowWidth=400)
    sigmoid = ct_slice([0, 100], WindowCenter=40, WindowWidth=400, VOILUTFunction="SIGMOID")
    assert grey(linear).tolist() != grey(sigmoid).tolist()


def test_an_invalid_window_in_the_file_falls_back_to_an_automatic_window() -> None:
    ds = ct_slice(list(range(-100, 100)), WindowCenter=40, WindowWidth=0)
    levels = grey(ds)[0]
    assert levels[0] < 5
    assert levels[-1] > 250


def test_a_modality_lut_sequence_replaces_rescale() -> None:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [256, 0, 16])
    item.add_new("LUTData", "US", [10 * i for i in range(256)])
    item.ModalityLUTType = "US"
    stored = np.array([[0, 128, 255, 300]], dtype=np.uint16)
    ds = image_dataset(stored, bits_stored=12, RescaleSlope=99, RescaleIntercept=99)
    ds.ModalityLUTSequence = [item]
    window = Window(1280, 2560, VOILUTFunction.LINEAR_EXACT)
    assert grey(ds, window=window).tolist() == [[0, 128, 254, 254]]  # 300 is past the table: its last entry


def test_a_voi_lut_sequence_is_preferred_to_the_window() -> None:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4096, 0, 12])
    item.add_new("LUTData", "US", [4095 - i for i in range(4096)])
    stored = np.array([[0, 2048, 4095]], dtype=np.uint16)
    ds = image_dataset(stored, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ds.VOILUTSequence = [item]
    assert grey(ds).tolist() == [[255, 127, 0]]  # LUT[2048] is 2047: 2047 / 4095 × 255 ≈ 127.47
    assert grey(ds, window=Window(2048, 4096)).tolist() == [[0, 128, 255]]


def test_a_voi_lut_declared_16_bit_but_holding_12_bit_values_still_spans_black_to_white() -> None:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4096, 0, 16])
    item.add_new("LUTData", "US", list(range(4096)))
    ds = image_dataset(np.array([[0, 4095]], dtype=np.uint16), bits_stored=12)
    ds.VOILUTSequence = [item]
    assert grey(ds).tolist() == [[0, 255]]


def test_the_real_voi_lut_and_modality_lut_files_render() -> None:
    for name in ("vlut_04.dcm", "mlut_18.dcm"):
        levels = grey(read_dataset(sample_path(name)))
        assert levels.min() < 20
        assert levels.max() > 235


def test_the_automatic_window_ignores_pixel_padding_and_outliers() -> None:
    gradient = np.linspace(-100, 100, 2000).round().astype(np.int16)
    hu = np.concatenate([gradient, np.full(6000, -3024, np.int16), [3000]])  # padding, one metal pixel
    ds = ct_slice(hu.tolist(), PixelPaddingValue=-2000)  # stored value of -3024 HU
    levels = grey(ds)[0]
    body = levels[:2000]
    assert body[:5].max() <= 3
    assert body[-5:].min() >= 252
    assert 120 <= body[1000] <= 136


def test_the_automatic_window_honours_a_padding_range() -> None:
    hu = [-1000] * 500 + list(range(0, 200))
    ds = ct_slice(hu, PixelPaddingValue=-10, PixelPaddingRangeLimit=100)  # stored -10..100 is -1034..-924 HU
    levels = grey(ds)[0]
    assert levels[500] <= 3
    assert levels[-1] >= 252


def test_a_constant_image_renders_mid_grey() -> None:
    assert set(grey(ct_slice([40] * 16))[0].tolist()) == {128}


def test_eight_bit_data_without_a_window_is_shown_as_stored() -> None:
    stored = np.array([[0, 17, 128, 255]], dtype=np.uint8)
    assert grey(image_dataset(stored)).tolist() == [[0, 17, 128, 255]]


def test_wide_and_floating_point_data_go_through_the_same_window() -> None:
    uint32 = image_dataset(np.array([[0, 100_000, 200_000]], dtype=np.uint32))
    assert grey(uint32, window=Window(100_000, 200_000, VOILUTFunction.LINEAR_EXACT)).tolist() == [[0, 128, 255]]
    assert grey(uint32).tolist() == [[0, 128, 255]]

    floats = image_dataset(np.array([[0, 0, 0]], dtype=np.uint16))
    del floats.PixelData, floats.BitsStored, floats.HighBit, floats.PixelRepresentation
    floats.BitsAllocated = 32
    floats.FloatPixelData = np.array([-1.5, 0.25, np.nan], dtype=np.float32).tobytes()
    assert grey(floats, window=Window(0, 3, VOILUTFunction.LINEAR_EXACT)).tolist() == [[0, 149, 0]]  # NaN is black


# --------------------------------------------------------------------------- enhanced multi-frame


def test_enhanced_multi_frame_rescale_and_windows_come_from_the_functional_groups() -> None:
    stored = np.array([[[1064, 1264]], [[1064, 1264]]], dtype=np.uint16)
    ds = image_dataset(stored, frames=2)
    shared = Dataset()
    transformation = Dataset()
    transformation.RescaleIntercept = -1024
    transformation.RescaleSlope = 1
    shared.PixelValueTransformationSequence = [transformation]
    per_frame = []
    for center, width in ((40, 400), (240, 400)):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        group = Dataset()
        group.FrameVOILUTSequence = [voi]
        per_frame.append(group)
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = per_frame
    assert grey(ds, frame_index=0).tolist() == [[128, 255]]
    assert grey(ds, frame_index=1).tolist() == [[0, 128]]


# --------------------------------------------------------------------------- MONOCHROME1 and inversion


def test_monochrome1_is_inverted_to_read_like_monochrome2() -> None:
    ds = read_dataset(sample_path("dicomdirtests/77654033/CR1/6154"))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    as_stored = grey(ds)
    ds.PhotometricInterpretation = "MONOCHROME2"
    assert np.array_equal(as_stored, 255 - grey(ds))
    assert as_stored.std() > 1


def test_a_real_monochrome1_radiograph_shows_exposed_air_dark_and_bone_bright() -> None:
    ds = read_dataset(sample_path("RG3_UNCR.dcm"))  # a lower leg, 1760 × 1760
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    levels = grey(ds, viewport=(176, 176))
    air_beside_the_leg = np.median(levels[40:140, 48:64])
    tibia = np.median(levels[40:140, 80:96])
    assert air_beside_the_leg < 60
    assert tibia > air_beside_the_leg + 100


def test_the_invert_flag_inverts_greyscale_and_colour() -> None:
    ct = ct_slice([-1000, 40, 240])
    assert grey(ct, window=Window(40, 400), invert=True).tolist() == [[255, 127, 0]]
    rgb = read_dataset(sample_path("SC_rgb.dcm"))
    assert np.array_equal(np.asarray(render_frame(rgb, invert=True)), 255 - np.asarray(render_frame(rgb)))


# --------------------------------------------------------------------------- colour


def test_planar_configuration_one_renders_like_zero() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    by_pixel = render_frame(image_dataset(rgb, photometric="RGB"))
    by_plane = render_frame(image_dataset(rgb, photometric="RGB", planar_configuration=1))
    assert by_pixel.mode == by_plane.mode == "RGB"
    assert np.array_equal(np.asarray(by_pixel), rgb)
    assert np.array_equal(np.asarray(by_plane), rgb)


def test_sixteen_bit_rgb_keeps_its_top_eight_bits() -> None:
    rgb = np.array([[[0, 0x1234, 0xFFFF]]], dtype=np.uint16)
    assert np.asarray(render_frame(image_dataset(rgb, photometric="RGB"))).tolist() == [[[0, 0x12, 0xFF]]]
    twelve = np.array([[[0, 0x0800, 0x0FFF]]], dtype=np.uint16)
    rendered = render_frame(image_dataset(twelve, photometric="RGB", bits_stored=12))
    assert np.asarray(rendered).tolist() == [[[0, 0x80, 0xFF]]]


def test_ybr_full_is_converted_to_rgb() -> None:
    # Pure red in YCbCr (BT.601 full range): Y 76, Cb 85, Cr 255.
    ybr = np.array([[[76, 85, 255], [255, 128, 128]]], dtype=np.uint8)
    rendered = np.asarray(render_frame(image_dataset(ybr, photometric="YBR_FULL"))).astype(int)
    assert np.abs(rendered - [[[255, 0, 0], [255, 255, 255]]]).max() <= 2


def test_palette_colour_applies_the_lookup_tables() -> None:
    stored = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    ds = image_dataset(stored, photometric="PALETTE COLOR")
    index = np.arange(256)
    tables = {
        "Red": (index * 257).astype("<u2"),
        "Green": (65535 - index * 257).astype("<u2"),
        "Blue": np.full(256, 0x8000, "<u2"),
    }
    for colour, table in tables.items():
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", table.tobytes())
    image = render_frame(ds)
    assert image.mode == "RGB"
    assert np.asarray(image).tolist() == [[[0, 255, 128], [1, 254, 128], [128, 127, 128], [255, 0, 128]]]


def test_real_palette_colour_files_render_in_colour() -> None:
    for name in ("examples_palette.dcm", "OBXXXX1A.dcm"):
        pixels = np.asarray(render_frame(read_dataset(sample_path(name)))).astype(int)
        assert pixels.shape[2] == 3
        assert np.abs(pixels[..., 0] - pixels[..., 2]).max() > 50, f"{name} came out grey"


# --------------------------------------------------------------------------- frames


def test_each_frame_of_a_multi_frame_image_can_be_chosen() -> None:
    ds = read_dataset(sample_path("emri_small.dcm"))
    assert number_of_frames(ds) == 10
    first, last = grey(ds, frame_index=0), grey(ds, frame_index=9)
    assert first.shape == last.shape == (64, 64)
    assert not np.array_equal(first, last)
    with pytest.raises(ValueError, match="out of range"):
        render_frame(ds, 10)
    with pytest.raises(ValueError, match="out of range"):
        render_frame(ds, -1)


def test_a_compressed_cine_loop_decodes_the_requested_frame() -> None:
    ds = read_dataset(sample_path("color3d_jpeg_baseline.dcm"))
    assert number_of_frames(ds) == 120
    frame = render_frame(ds, 60, viewport=(128, 128))
    assert (frame.mode, frame.size) == ("RGB", (128, 96))


def test_only_the_requested_frame_is_decoded() -> None:
    frames = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    ds = image_dataset(frames, frames=2)
    ds.compress(RLELossless)
    first, _ = list(generate_frames(ds.PixelData, number_of_frames=2))
    ds.PixelData = encapsulate([first, b"\x00" * 64])  # the second frame is garbage
    assert grey(ds, frame_index=0).tolist() == frames[0].tolist()
    with pytest.raises(RenderError, match="could not be decoded"):
        render_frame(ds, 1)


def test_number_of_frames_tolerates_missing_and_zero_values() -> None:
    ds = ct_slice([0])
    assert number_of_frames(ds) == 1
    ds.NumberOfFrames = 0
    assert number_of_frames(ds) == 1
    ds.NumberOfFrames = 3
    assert number_of_frames(ds) == 3


# --------------------------------------------------------------------------- viewport and encoding


def test_the_viewport_keeps_the_aspect_ratio_when_shrinking() -> None:
    tall = render_frame(read_dataset(sample_path("JPEG2000.dcm")), viewport=(256, 256))  # 256 × 1024
    assert tall.size == (64, 256)
    us = render_frame(read_dataset(sample_path("US1_UNCR.dcm")), viewport=(200, 200))  # 640 × 480
    assert us.size == (200, 150)


def test_the_viewport_enlarges_small_images_to_fit() -> None:
    image = render_frame(read_dataset(sample_path("MR_small.dcm")), viewport=(128, 300))
    assert image.size == (128, 128)
    assert np.asarray(image).std() > 20


def test_an_invalid_viewport_is_refused() -> None:
    with pytest.raises(ValueError, match="viewport"):
        render_frame(read_dataset(sample_path("MR_small.dcm")), viewport=(0, 10))


def test_jpeg_and_png_encodings_open_again_with_pillow() -> None:
    image = render_frame(read_dataset(sample_path("CT_small.dcm")))
    png = Image.open(io.BytesIO(encode_image(image, "image/png")))
    assert (png.format, png.mode, png.size) == ("PNG", "L", image.size)
    assert np.array_equal(np.asarray(png), np.asarray(image))

    jpeg = Image.open(io.BytesIO(encode_image(image, "image/jpeg", quality=95)))
    assert (jpeg.format, jpeg.mode, jpeg.size) == ("JPEG", "L", image.size)
    assert np.abs(np.asarray(jpeg).astype(int) - np.asarray(image)).mean() < 3

    colour = render_frame(read_dataset(sample_path("SC_rgb.dcm")))
    assert Image.open(io.BytesIO(encode_image(colour))).mode == "RGB"


def test_lower_jpeg_quality_gives_smaller_files() -> None:
    image = render_frame(read_dataset(sample_path("CT_small.dcm")))
    assert len(encode_image(image, quality=30)) < len(encode_image(image, quality=95))


def test_unsupported_media_types_and_qualities_are_refused() -> None:
    image = Image.new("L", (4, 4))
    with pytest.raises(ValueError, match="image/gif"):
        encode_image(image, "image/gif")
    with pytest.raises(ValueError, match="quality"):
        encode_image(image, quality=0)


def test_render_goes_from_a_path_or_bytes_to_an_encoded_image() -> None:
    path = sample_path("CT_small.dcm")
    from_path = render(path, viewport=(64, 64), media_type="image/png")
    from_bytes = render(Path(path).read_bytes(), viewport=(64, 64), media_type="image/png")
    assert from_path == from_bytes
    assert Image.open(io.BytesIO(from_path)).size == (64, 64)


# --------------------------------------------------------------------------- window parsing


def test_windows_parse_from_ps3_18_query_values() -> None:
    assert Window.parse("40,400") == Window(40, 400)
    assert Window.parse(" -600 , 1500 , linear-exact ") == Window(-600, 1500, VOILUTFunction.LINEAR_EXACT)
    assert Window.parse("40,400,SIGMOID").function is VOILUTFunction.SIGMOID


@pytest.mark.parametrize("value", ["40", "40,400,cubic", "a,b", "40,0", "40,400,linear,x", "nan,400"])
def test_malformed_windows_are_refused(value: str) -> None:
    with pytest.raises(ValueError):
        Window.parse(value)


def test_a_linear_window_narrower_than_one_is_refused_but_linear_exact_allows_it() -> None:
    with pytest.raises(ValueError):
        Window(40, 0.5)
    assert Window(40, 0.5, VOILUTFunction.LINEAR_EXACT).width == 0.5
