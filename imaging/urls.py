from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from imaging import views
from imaging.viewer import study_viewer

urlpatterns: list[URLPattern | URLResolver] = [
    path("studies/", views.study_list, name="study-list"),
    path("studies/<str:study_uid>/", views.study_detail, name="study-detail"),
    path("studies/<str:study_uid>/viewer/", study_viewer, name="study-viewer"),
    path("upload/", views.upload_page, name="upload"),
    path("upload/files/", views.upload_file, name="upload-file"),
]
