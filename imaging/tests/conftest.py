from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pynetdicom.transport import ThreadedAssociationServer

from imaging.dicom.header import InvalidDicom, parse_header
from imaging.dimse import start_scp
from institutions.models import AETitle, Institution


def _local_testdata() -> list[Path]:
    # get_testdata_files() may try to download files that are not installed;
    # the test suite only looks at what is on this disk.
    import pydicom.data

    roots = [Path(pydicom.data.__file__).parent / "test_files", Path(pydicom.data.__file__).parent / "charset_files"]
    try:
        import data_store  # pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(path for root in roots for path in root.rglob("*.dcm"))


def _has_pixels(path: Path) -> bool:
    try:
        header = parse_header(path)
    except InvalidDicom:
        return False
    return "7FE00010" in header.metadata or "7FE00008" in header.metadata or "7FE00009" in header.metadata


ALL_TESTDATA = _local_testdata()
PIXEL_TESTDATA = [path for path in ALL_TESTDATA if _has_pixels(path)]


@pytest.fixture
def pixel_files() -> Iterator[list[Path]]:
    yield PIXEL_TESTDATA


@pytest.fixture
def slow_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    """Preview rendering that takes half a second longer: work a caller must surely have waited for."""
    from imaging import previews

    render = previews.render_previews

    def slow_render(instance_ids: list[int]) -> None:
        time.sleep(0.5)
        render(instance_ids)

    monkeypatch.setattr(previews, "render_previews", slow_render)


CALLING_AE = "MODALITY1"


@pytest.fixture
def scp() -> Iterator[ThreadedAssociationServer]:
    """The DICOM Storage SCP on a free port, in a thread of this process."""
    server = start_scp(bind="127.0.0.1", port=0, ae_title="CLINICNET", poll_interval=0.02)
    yield server
    server.shutdown()


@pytest.fixture
def modality(clinic: Institution) -> Institution:
    """The clinic, with the AE title its modality pushes from."""
    AETitle.objects.create(institution=clinic, ae_title=CALLING_AE)
    return clinic


def wait_until(condition: Callable[[], object], seconds: float, what: Callable[[], object]) -> None:
    """Poll *condition* until it holds (work done in a background thread); fail with ``what()`` after *seconds*."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.02)
