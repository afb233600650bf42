"""The site's icon: named by every page, and at /favicon.ico for pages that name none (the admin's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client


def test_favicon_ico_leads_to_the_sites_icon(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == static("clinicnet/favicon.svg")
    found = finders.find("clinicnet/favicon.svg")
    assert isinstance(found, str)
    assert Path(found).read_text().lstrip().startswith("<svg")


@pytest.mark.django_db
def test_pages_name_the_icon(client: Client) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert f'<link rel="icon" href="{static("clinicnet/favicon.svg")}" type="image/svg+xml">' in page
