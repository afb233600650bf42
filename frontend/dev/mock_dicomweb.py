"""A throw-away DICOMweb server for developing the viewer without Django.

Development aid only: serves a folder of DICOM files (see ``fixtures.py``)
with the endpoints the viewer uses, the built bundle from frontend/dist under
/static/viewer/, and a page like imaging/templates/imaging/viewer.html at
/viewer/ (``?lang=en`` for English). No access checks: bind it to 127.0.0.1.

    .venv/bin/python frontend/dev/fixtures.py
    npm run build
    .venv/bin/python frontend/dev/mock_dicomweb.py [--port 8765] [--dir frontend/dev/.fixtures]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import uuid
from collections import defaultdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import generate_fragmented_frames
from pydicom.pixels import apply_voi_lut

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


class Archive:
    def __init__(self, folder: Path) -> None:
        self.files: dict[str, Path] = {}
        self.series: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        self.headers: dict[str, pydicom.Dataset] = {}
        for path in sorted(folder.glob("*.dcm")):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            sop = str(ds.SOPInstanceUID)
            self.files[sop] = path
            self.headers[sop] = ds
            self.series[str(ds.StudyInstanceUID)][str(ds.SeriesInstanceUID)].append(sop)

    def instance_json(self, sop: str, base: str) -> dict:
        ds = self.headers[sop]
        # Everything inline (palette LUT data too) except the pixels.
        data = ds.to_json_dict(bulk_data_threshold=10**7)
        data["7FE00010"] = {"vr": "OW", "BulkDataURI": f"{base}/instances/{sop}/bulk/7FE00010"}
        data["00083002"] = {"vr": "UI", "Value": [str(ds.file_meta.TransferSyntaxUID)]}
        return data

    def series_json(self, study: str) -> list[dict]:
        answer = []
        for series, sops in self.series[study].items():
            ds = self.headers[sops[0]]
            answer.append(
                {
                    "0020000E": {"vr": "UI", "Value": [series]},
                    "00080060": {"vr": "CS", "Value": [str(ds.Modality)]},
                    "0008103E": {"vr": "LO", "Value": [str(getattr(ds, "SeriesDescription", ""))]},
                    "00200011": {"vr": "IS", "Value": [int(getattr(ds, "SeriesNumber", 0) or 0)]},
                    "00201209": {"vr": "IS", "Value": [len(sops)]},
                }
            )
        return answer

    def frame(self, sop: str, number: int, keep_syntax: bool) -> tuple[bytes, str]:
        ds = pydicom.dcmread(self.files[sop])
        syntax = str(ds.file_meta.TransferSyntaxUID)
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        if not 1 <= number <= frames:
            raise KeyError(number)
        if syntax in UNCOMPRESSED and syntax != "1.2.840.10008.1.2.2":
            size = ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
            data = ds.PixelData[(number - 1) * size : number * size]
            return data, "1.2.840.10008.1.2.1"
        if keep_syntax and syntax not in UNCOMPRESSED:
            fragments = list(generate_fragmented_frames(ds.PixelData, number_of_frames=frames))
            return b"".join(fragments[number - 1]), syntax
        array = ds.pixel_array
        if frames > 1:
            array = array[number - 1]
        return np.ascontiguousarray(array).tobytes(), "1.2.840.10008.1.2.1"

    def thumbnail(self, sop: str) -> bytes:
        ds = pydicom.dcmread(self.files[sop])
        array = ds.pixel_array
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            array = array[0]
        if ds.SamplesPerPixel == 1:
            array = apply_voi_lut(array.astype(np.float64), ds) if "WindowCenter" in ds else array.astype(np.float64)
            low, high = float(array.min()), float(array.max())
            array = ((array - low) / max(high - low, 1) * 255).astype(np.uint8)
            if ds.PhotometricInterpretation == "MONOCHROME1":
                array = 255 - array
            image = Image.fromarray(array, mode="L")
        else:
            # pixel_array has already converted YBR to RGB.
            image = Image.fromarray(array.astype(np.uint8))
        image.thumbnail((128, 128))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
        return out.getvalue()


def make_handler(archive: Archive):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            try:
                self.route(path, parse_qs(url.query))
            except KeyError:
                self.send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

        def route(self, path: str, query: dict[str, list[str]]) -> None:
            if path == "/viewer/":
                self.send(
                    HTTPStatus.OK,
                    self.page(query.get("lang", ["ko"])[0], query.get("study", [""])[0]),
                    "text/html; charset=utf-8",
                )
                return
            if path.startswith("/static/viewer/"):
                file = (DIST / path.removeprefix("/static/viewer/")).resolve()
                if DIST not in file.parents or not file.is_file():
                    raise KeyError(path)
                types = {
                    ".js": "text/javascript",
                    ".css": "text/css",
                    ".wasm": "application/wasm",
                    ".json": "application/json",
                }
                self.send(HTTPStatus.OK, file.read_bytes(), types.get(file.suffix, "application/octet-stream"))
                return
            if path == "/dicomweb/wado":
                sop = query["objectUID"][0]
                self.send(HTTPStatus.OK, archive.files[sop].read_bytes(), "application/dicom")
                return
            match = re.fullmatch(r"/dicomweb/studies/([\d.]+)(/.*)?", path)
            if not match:
                raise KeyError(path)
            study, rest = match.group(1), match.group(2) or ""
            if study not in archive.series:
                raise KeyError(study)
            if rest == "/series":
                self.json(archive.series_json(study))
                return
            m = re.fullmatch(r"/series/([\d.]+)/(metadata|thumbnail)", rest)
            if m:
                sops = archive.series[study][m.group(1)]
                if not sops:
                    raise KeyError(rest)
                if m.group(2) == "thumbnail":
                    self.send(HTTPStatus.OK, archive.thumbnail(sops[len(sops) // 2]), "image/jpeg")
                else:
                    base = f"/dicomweb/studies/{study}/series/{m.group(1)}"
                    self.json([archive.instance_json(sop, base) for sop in sops])
                return
            m = re.fullmatch(r"/series/([\d.]+)/instances/([\d.]+)/frames/(\d+)", rest)
            if m:
                accept = self.headers.get("Accept", "")
                data, syntax = archive.frame(m.group(2), int(m.group(3)), "transfer-syntax=*" in accept)
                boundary = uuid.uuid4().hex
                body = (
                    f"--{boundary}\r\nContent-Type: application/octet-stream; transfer-syntax={syntax}\r\n\r\n".encode()
                    + data
                    + f"\r\n--{boundary}--\r\n".encode()
                )
                self.send(
                    HTTPStatus.OK,
                    body,
                    f'multipart/related; type="application/octet-stream"; boundary={boundary}',
                )
                return
            raise KeyError(rest)

        def json(self, value: object) -> None:
            self.send(HTTPStatus.OK, json.dumps(value).encode(), "application/dicom+json")

        def page(self, lang: str, study: str) -> bytes:
            manifest = json.loads((DIST / "manifest.json").read_text())
            entry = manifest["src/main.ts"]
            css = "".join(f'<link rel="stylesheet" href="/static/viewer/{c}">' for c in entry.get("css", []))
            config = {
                "studyInstanceUID": study or next(iter(archive.series)),
                "dicomwebRoot": "/dicomweb",
                "homeUrl": "/",
            }
            return (
                f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Viewer</title>{css}'
                f'<script type="module" src="/static/viewer/{entry["file"]}"></script></head>'
                f'<body><header class="topbar">ClinicNet (mock)</header><main class="viewer-main">'
                f'<script id="viewer-config" type="application/json">{json.dumps(config)}</script>'
                f'<div id="viewer" class="viewer" data-state="loading"></div></main></body></html>'
            ).encode()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent / ".fixtures")
    args = parser.parse_args()
    archive = Archive(args.dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(archive))
    print(f"mock DICOMweb on http://127.0.0.1:{args.port}/viewer/ ({len(archive.files)} instances)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
