"""The radiologist's viewer in Debian's Chromium: from the worklist to a CT, its tools, a cine loop, dental images.

What is checked is what a reader sees: pixels on the viewer's canvas (not blank, in the shape
of the image), the overlay and the viewer's data attributes (``data-image-index``,
``data-window``), measurement text. Screenshots of the key moments go to e2e/artifacts/.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import time
from typing import Any

import pytest
from PIL import Image

from e2e.conftest import ARTIFACTS, Server, sign_in
from imaging import synthetic
from imaging.testing import testdata_path

pytestmark = pytest.mark.e2e

CLINIC_CODE = "31200101"  # 밝은내과의원: doctor and clerk
CT_UID = synthetic.uid("demo-ct")  # the demo's 60-slice chest CT, Kim^Minji
PX_UID = synthetic.uid("demo-px")  # dental panoramic, 2200 × 1100, at 한빛치과의원
IO_UID = synthetic.uid("demo-io")  # intraoral, 1300 × 1000
CINE_FILE = "examples_ybr_color.dcm"  # pydicom's 30-frame JPEG ultrasound loop


# --- helpers ----------------------------------------------------------------------------------------


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"viewer-{name}.png"))


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def wait_for_image(page: Any) -> None:
    """The viewer and its first viewport are ready, an image has been drawn and its overlay written."""
    page.wait_for_selector("#viewer[data-state=ready] .viewport-cell[data-cell='0'][data-state=ready]", timeout=30_000)
    page.wait_for_function("performance.getEntriesByName('clinicnet:first-image', 'mark').length > 0")
    # The overlay follows the drawing by an animation frame.
    page.wait_for_function("document.querySelector(\".viewport-cell[data-cell='0']\").dataset.window")


def cell(page: Any) -> Any:
    return page.locator(".viewport-cell[data-cell='0']")


def canvas(page: Any) -> Image.Image:
    """What the first viewport's canvas shows now."""
    url = page.evaluate(
        "document.querySelector(\".viewport-cell[data-cell='0'] canvas.cornerstone-canvas\").toDataURL('image/png')"
    )
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def pixel_hash(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def drawn_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The bounding box of pixels that are not the viewport's black background."""
    mask = image.convert("L").point(lambda value: 255 if value > 8 else 0)
    box = mask.getbbox()
    assert box is not None, "the canvas is blank"
    return box


def aspect(box: tuple[int, int, int, int]) -> float:
    left, top, right, bottom = box
    return (right - left) / (bottom - top)


def dataset(page: Any, name: str) -> str:
    return cell(page).get_attribute(f"data-{name}") or ""


def overlay(page: Any, corner: str) -> str:
    return cell(page).locator(f".overlay.{corner}").inner_text()


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag with the left button across the first viewport, in fractions of its size."""
    box = cell(page).bounding_box()
    page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
    page.mouse.down()
    for step in range(1, 11):
        x = start[0] + (end[0] - start[0]) * step / 10
        y = start[1] + (end[1] - start[1]) * step / 10
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.mouse.up()


def preview_aspect(page: Any, study_uid: str) -> tuple[float, float]:
    """(preview aspect, columns/rows × spacing aspect) of the study's first image, from the server."""
    metadata = page.request.get(f"/dicomweb/studies/{study_uid}/metadata").json()
    first = metadata[0]
    rows, columns = first["00280010"]["Value"][0], first["00280011"]["Value"][0]
    spacing = (first.get("00280030") or first.get("00181164") or {"Value": [1, 1]})["Value"]
    series, sop = first["0020000E"]["Value"][0], first["00080018"]["Value"][0]
    url = f"/dicomweb/studies/{study_uid}/series/{series}/instances/{sop}/rendered?viewport=512,512"
    preview = Image.open(io.BytesIO(page.request.get(url, headers={"Accept": "image/png"}).body()))
    return preview.width / preview.height, (columns * float(spacing[1])) / (rows * float(spacing[0]))


def assert_shape_matches_preview(page: Any, study_uid: str, image: Image.Image) -> None:
    drawn = drawn_box(image)
    preview, geometry = preview_aspect(page, study_uid)
    assert aspect(drawn) == pytest.approx(preview, rel=0.05), (drawn, preview)
    assert aspect(drawn) == pytest.approx(geometry, rel=0.05), (drawn, geometry)
    # Fitted to the viewport: the image fills it in one direction.
    left, top, right, bottom = drawn
    assert (right - left) > 0.8 * image.width or (bottom - top) > 0.8 * image.height, (drawn, image.size)


def import_and_open(new_page: Any, server: Server, path: Any, study_uid: str) -> tuple[Any, list[str]]:
    """Import *path* for the doctor's clinic, open its study in the viewer as the doctor; (page, page errors)."""
    server.manage("import_dicom", str(path), "--institution", CLINIC_CODE, "--no-progress")
    page = new_page(locale="en-US")
    errors = watch_errors(page)
    sign_in(page, "doctor")
    page.goto(f"/studies/{study_uid}/viewer/")
    wait_for_image(page)
    return page, errors


# --- tests ------------------------------------------------------------------------------------------


def test_a_doctor_reads_the_demo_ct_from_the_worklist(new_page: Any) -> None:
    page = new_page(locale="en-US")
    errors = watch_errors(page)
    sign_in(page, "doctor")
    page.goto("/studies/")

    # Keyboard down the worklist to the CT, then Enter opens it in the viewer.
    page.wait_for_selector(f"#studies tr[data-study='{CT_UID}']")
    for _ in range(page.locator("#studies tbody tr[data-study]").count()):
        page.keyboard.press("j")
        if page.locator("#studies tr.selected").get_attribute("data-study") == CT_UID:
            break
    assert page.locator("#studies tr.selected").get_attribute("data-study") == CT_UID
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/studies/{CT_UID}/viewer/")
    wait_for_image(page)
    shot(page, "ct-first-image")

    # The first slice, drawn, in the file's window.
    first = canvas(page)
    drawn_box(first)
    assert dataset(page, "image-index") == "0"
    assert dataset(page, "window") == "400/40"
    assert "1/60" in overlay(page, "bl")

    # The wheel scrolls through the slices.
    box = cell(page).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 120)
        time.sleep(0.15)
    page.wait_for_function("Number(document.querySelector(\".viewport-cell[data-cell='0']\").dataset.imageIndex) >= 2")
    assert re.search(r"\b[3-4]/60\b", overlay(page, "bl"))

    # A window/level drag changes the pixels and the window.
    before = pixel_hash(canvas(page))
    drag(page, (0.5, 0.5), (0.62, 0.4))
    page.wait_for_function("document.querySelector(\".viewport-cell[data-cell='0']\").dataset.window !== '400/40'")
    assert pixel_hash(canvas(page)) != before

    # Key 3 is the lung preset: W 1500 / L -600, on the overlay and in the data attribute.
    page.keyboard.press("3")
    page.wait_for_function("document.querySelector(\".viewport-cell[data-cell='0']\").dataset.window === '1500/-600'")
    assert "1500" in overlay(page, "br") and "-600" in overlay(page, "br")
    lung = canvas(page)
    shot(page, "ct-lung-window")
    # In the lung window air is grey, not black: the drawn extent is the whole slice, shaped like the preview.
    assert_shape_matches_preview(page, CT_UID, lung)

    # A length measurement, in millimetres.
    page.keyboard.press("l")
    drag(page, (0.35, 0.5), (0.65, 0.5))
    labels_script = "[...document.querySelectorAll(\".viewport-cell[data-cell='0'] svg text\")].map(t => t.textContent)"
    page.wait_for_function(f"{labels_script}.some(text => /mm/.test(text))")
    labels = page.evaluate(labels_script)
    lengths = [float(found) for label in labels for found in re.findall(r"([\d.]+)\s*mm", label)]
    assert lengths and all(length > 10 for length in lengths), labels
    shot(page, "ct-length")
    assert errors == []


def test_a_multi_frame_ultrasound_plays_as_a_loop(new_page: Any, server: Server) -> None:
    import pydicom

    path = testdata_path(CINE_FILE)
    study_uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    page, errors = import_and_open(new_page, server, path, study_uid)
    # A single multi-frame object starts playing by itself, like on the modality.
    page.wait_for_selector(".viewport-cell[data-cell='0'].playing")
    seen = set()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline and len(seen) < 4:
        seen.add(dataset(page, "image-index"))
        time.sleep(0.1)
    assert len(seen) >= 4, f"the loop did not advance: frames seen {sorted(seen)}"
    assert "/30" in overlay(page, "bl")
    shot(page, "us-cine")
    drawn_box(canvas(page))
    assert errors == []


@pytest.mark.parametrize(
    "study_uid,name", [(PX_UID, "dental-panoramic"), (IO_UID, "dental-intraoral")], ids=["panoramic", "intraoral"]
)
def test_the_dentist_opens_dental_images(new_page: Any, study_uid: str, name: str) -> None:
    page = new_page(locale="en-US")
    errors = watch_errors(page)
    sign_in(page, "dentist")
    page.goto(f"/studies/{study_uid}/viewer/")
    wait_for_image(page)
    shot(page, name)
    assert_shape_matches_preview(page, study_uid, canvas(page))
    assert errors == []


# One file of each kind the viewer must read, from pydicom's test data: (file, what it is).
KINDS = [
    ("MR_small.dcm", "MR, 16-bit signed, uncompressed"),
    ("RG1_UNCI.dcm", "CR, MONOCHROME1, uncompressed"),
    ("SC_rgb.dcm", "RGB, uncompressed"),
    ("SC_rgb_jpeg_dcmtk.dcm", "RGB, JPEG baseline"),
    ("JPEG-LL.dcm", "NM, JPEG lossless"),
    ("MR_small_jp2klossless.dcm", "MR, JPEG 2000 lossless"),
    ("RG3_J2KI.dcm", "CR, JPEG 2000 lossy"),
    ("MR_small_RLE.dcm", "MR, RLE lossless"),
]


@pytest.mark.parametrize("name,kind", KINDS, ids=[name.removesuffix(".dcm") for name, _kind in KINDS])
def test_each_kind_of_image_is_drawn(new_page: Any, server: Server, tmp_path: Any, name: str, kind: str) -> None:
    """Several of these files share their UIDs (MR_small in four encodings): each goes in as a study of its own."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(testdata_path(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)  # the pixel data stays encoded as it was
    page, errors = import_and_open(new_page, server, path, ds.StudyInstanceUID)
    image = canvas(page)
    shot(page, f"kind-{name.removesuffix('.dcm')}")
    # Not the shape check of the CT: several of these images have black borders of their own.
    drawn_box(image)
    assert len(image.convert("L").getcolors(256) or []) > 16, f"{kind}: hardly any grey levels drawn"
    assert "NaN" not in overlay(page, "br"), f"{kind}: {overlay(page, 'br')}"
    assert errors == [], kind
