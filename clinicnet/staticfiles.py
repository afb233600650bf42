"""Static files: WhiteNoise's compressed storage with hashed names, except for the viewer bundle.

Vite names every file of the viewer bundle (frontend/dist/assets/, published under
``viewer/assets/``) after its content, and the bundle's chunks import one another by those
names. Were the page to load the entry chunk under a second name (Django's own hash on top
of Vite's), a chunk importing the entry by Vite's name would run it a second time: two
viewers on one page. So the bundle's files keep Vite's names.
"""

from __future__ import annotations

from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

VITE_ASSETS = "viewer/assets/"


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    def url(self, name: str | None, force: bool = False) -> str:
        if name and name.startswith(VITE_ASSETS):
            return FileSystemStorage.url(self, name)
        return super().url(name, force)
