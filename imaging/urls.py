from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from imaging.viewer import study_viewer

urlpatterns: list[URLPattern | URLResolver] = [
    path("studies/<str:study_uid>/viewer/", study_viewer, name="study-viewer"),
]
