"""The OHIF Viewer data source for this server, served at ``/dicomweb/ohif-config.json``.

A separately hosted OHIF Viewer (v3) points its ``dicomweb`` data source at
ClinicNet's DICOMweb root; this endpoint gives the block to paste into its
``app-config.js`` with this server's addresses filled in (docs/ohif.md).
It holds no patient data, so it needs no sign-in.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from imaging.dicomweb.common import _add_cors, json_response
from imaging.dicomweb.urls_util import service_root


def data_source(root: str) -> dict[str, Any]:
    """The OHIF v3 ``dataSources`` entry for a ClinicNet DICOMweb root."""
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": "clinicnet",
        "configuration": {
            "friendlyName": "ClinicNet",
            "name": "clinicnet",
            "wadoUriRoot": f"{root}/wado",
            "qidoRoot": root,
            "wadoRoot": root,
            "qidoSupportsIncludeField": True,
            "supportsReject": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": True,
            "supportsWildcard": True,
            "staticWado": False,
            "singlepart": "bulkdata,video",
            "bulkDataURI": {"enabled": True},
            "omitQuotationForMultipartRequest": True,
        },
    }


@require_GET
def ohif_config(request: HttpRequest) -> HttpResponse:
    config = {
        "defaultDataSourceName": "clinicnet",
        "dataSources": [data_source(service_root(request))],
        # Tools send a personal access token (profile page) as a bearer token;
        # OHIF's user authentication service or an oidc block supplies it.
        "authentication": {"scheme": "Bearer", "tokens": "/profile/#access-tokens"},
    }
    response = json_response(request, config, "application/json")
    _add_cors(request, response)
    return response
