"""Absolute addresses of DICOMweb resources, built from the request's host."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse


def service_root(request: HttpRequest) -> str:
    """``https://host/dicomweb``: the root every RetrieveURL and BulkDataURI hangs from."""
    return request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix("/studies")


def host_root(request: HttpRequest) -> str:
    """``https://host``: stored BulkDataURIs are root-relative paths and get this in front."""
    return request.build_absolute_uri("/").removesuffix("/")
