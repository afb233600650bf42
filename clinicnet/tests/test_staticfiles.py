"""Static file URLs: Django's hashed names, except for the viewer bundle, which Vite has already named."""

from __future__ import annotations

import json
from pathlib import Path

from clinicnet.staticfiles import StaticFilesStorage


def _storage(folder: Path) -> StaticFilesStorage:
    manifest = {
        "version": "1.1",
        "hash": "0",
        "paths": {
            "imaging/study_list.js": "imaging/study_list.35be6f558490.js",
            "viewer/assets/viewer-gZv-9IVD.js": "viewer/assets/viewer-gZv-9IVD.6a2f0c1d9e8b.js",
        },
    }
    (folder / "staticfiles.json").write_text(json.dumps(manifest))
    return StaticFilesStorage(location=folder, base_url="/static/")


def test_the_viewer_bundle_is_served_by_the_names_its_chunks_import(tmp_path: Path) -> None:
    # A chunk imports "./viewer-gZv-9IVD.js": the page must load the entry by that very URL, or it runs twice.
    assert _storage(tmp_path).url("viewer/assets/viewer-gZv-9IVD.js") == "/static/viewer/assets/viewer-gZv-9IVD.js"


def test_other_static_files_keep_their_hashed_names(tmp_path: Path) -> None:
    assert _storage(tmp_path).url("imaging/study_list.js") == "/static/imaging/study_list.35be6f558490.js"
