from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from imaging import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("uploads/", api.UploadApi.as_view(), name="api-upload"),
    path("studies/", api.StudyListApi.as_view(), name="api-study-list"),
    path("studies/<str:study_uid>/", api.StudyDetailApi.as_view(), name="api-study-detail"),
]
