"""DICOMweb URLs (PS3.18), mounted at ``/dicomweb/`` by clinicnet/urls.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from imaging.dicomweb import ohif, qido, rendered, stow, wado, wado_uri
from imaging.dicomweb.common import endpoint

app_name = "dicomweb"

STUDY = "studies/<str:study_uid>"
SERIES = f"{STUDY}/series/<str:series_uid>"
INSTANCE = f"{SERIES}/instances/<str:sop_uid>"
FRAMES = f"{INSTANCE}/frames/<str:frames>"


@endpoint("GET", "POST")
def _study_root(request: HttpRequest) -> HttpResponse:
    """``/studies``: POST stores (STOW-RS), GET searches (QIDO-RS)."""
    view = stow.store_instances if request.method == "POST" else qido.search_studies
    return view.undecorated(request)  # type: ignore[attr-defined]


@endpoint("GET", "POST")
def _study(request: HttpRequest, study_uid: str) -> HttpResponse:
    """``/studies/{uid}``: POST stores into that study, GET retrieves it."""
    view = stow.store_instances if request.method == "POST" else wado.retrieve_study
    return view.undecorated(request, study_uid)  # type: ignore[attr-defined]


urlpatterns: list[URLPattern] = [
    path("studies", _study_root, name="studies"),
    path("series", qido.search_series, name="series"),
    path("instances", qido.search_instances, name="instances"),
    path("wado", wado_uri.wado_uri, name="wado"),
    path("ohif-config.json", ohif.ohif_config, name="ohif-config"),
    path(STUDY, _study, name="study"),
    path(f"{STUDY}/metadata", wado.study_metadata, name="study-metadata"),
    path(f"{STUDY}/rendered", rendered.study_rendered, name="study-rendered"),
    path(f"{STUDY}/thumbnail", rendered.study_thumbnail, name="study-thumbnail"),
    path(f"{STUDY}/series", qido.search_series, name="study-series"),
    path(f"{STUDY}/instances", qido.search_instances, name="study-instances"),
    path(SERIES, wado.retrieve_series, name="series-retrieve"),
    path(f"{SERIES}/metadata", wado.series_metadata, name="series-metadata"),
    path(f"{SERIES}/rendered", rendered.series_rendered, name="series-rendered"),
    path(f"{SERIES}/thumbnail", rendered.series_thumbnail, name="series-thumbnail"),
    path(f"{SERIES}/instances", qido.search_instances, name="series-instances"),
    path(INSTANCE, wado.retrieve_instance, name="instance"),
    path(f"{INSTANCE}/metadata", wado.instance_metadata, name="instance-metadata"),
    path(f"{INSTANCE}/rendered", rendered.instance_rendered, name="instance-rendered"),
    path(f"{INSTANCE}/thumbnail", rendered.instance_thumbnail, name="instance-thumbnail"),
    path(f"{INSTANCE}/bulkdata/<path:path>", wado.retrieve_bulkdata, name="bulkdata"),
    path(FRAMES, wado.retrieve_frames, name="frames"),
    path(f"{FRAMES}/rendered", rendered.frame_rendered, name="frame-rendered"),
    path(f"{FRAMES}/thumbnail", rendered.frame_thumbnail, name="frame-thumbnail"),
]
