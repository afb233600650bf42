"""Personal access tokens on the profile page, bearer authentication, CORS and the OHIF configuration."""

from __future__ import annotations

import re

from django.test import Client

from clinicnet.audit.models import AuditEvent
from imaging.testing import make_study
from institutions.models import Institution, PersonalAccessToken, User
from institutions.testing import anonymous_client, client_for


def test_a_user_creates_a_token_sees_it_once_and_revokes_it(doctor: User, clinic: Institution) -> None:
    page = client_for(doctor)
    response = page.post("/profile/tokens/", {"name": "OHIF viewer"})
    assert response.status_code == 200
    raw = re.search(r'id="new-access-token">([^<]+)<', response.content.decode()).group(1)  # type: ignore[union-attr]
    token = PersonalAccessToken.objects.get(user=doctor)
    assert token.name == "OHIF viewer"
    assert token.token_hash == PersonalAccessToken.hash_of(raw) != raw  # stored hashed only
    assert raw.startswith(token.hint)
    profile = page.get("/profile/").content.decode()
    assert "OHIF viewer" in profile and raw not in profile  # shown once
    tool = Client(headers={"authorization": f"Bearer {raw}"})
    assert tool.get("/dicomweb/studies").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert page.post(f"/profile/tokens/{token.pk}/revoke/").status_code == 302
    assert tool.get("/dicomweb/studies").status_code == 401
    assert AuditEvent.objects.filter(action__in=["token.create", "token.revoke"], actor=doctor).count() == 2


def test_a_token_needs_a_name_and_only_its_owner_revokes_it(doctor: User, outsider: User) -> None:
    assert client_for(doctor).post("/profile/tokens/", {"name": " "}).status_code == 400
    client_for(doctor).post("/profile/tokens/", {"name": "script"})
    token = PersonalAccessToken.objects.get(user=doctor)
    assert client_for(outsider).post(f"/profile/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_deactivated_users_token_stops_working(doctor: User, clinic: Institution) -> None:
    client_for(doctor).post("/profile/tokens/", {"name": "script"})
    from institutions.tokens import token_create

    raw = token_create(user=doctor, name="other")[1]
    tool = Client(headers={"authorization": f"Bearer {raw}"})
    assert tool.get("/dicomweb/studies").status_code == 200
    User.objects.filter(pk=doctor.pk).update(is_active=False)
    assert tool.get("/dicomweb/studies").status_code == 401
    assert Client(headers={"authorization": "Bearer cnpat_made-up"}).get("/dicomweb/studies").status_code == 401


def test_cors_preflight_and_headers_for_configured_origins(settings: object, doctor: User, clinic: Institution) -> None:
    settings.DICOMWEB_CORS_ORIGINS = ["https://viewer.example.org"]  # type: ignore[attr-defined]
    study = make_study(clinic)
    client = anonymous_client()
    url = f"/dicomweb/studies/{study.study_instance_uid}/metadata"
    preflight = client.options(
        url,
        HTTP_ORIGIN="https://viewer.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://viewer.example.org"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    assert "GET" in preflight["Access-Control-Allow-Methods"]
    stranger = client.options(url, HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in stranger
    from institutions.tokens import token_create

    raw = token_create(user=doctor, name="ohif")[1]
    response = Client(headers={"authorization": f"Bearer {raw}", "origin": "https://viewer.example.org"}).get(url)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://viewer.example.org"
    assert "ETag" in response["Access-Control-Expose-Headers"]
    stow = client.options("/dicomweb/studies", HTTP_ORIGIN="https://viewer.example.org")
    assert "POST" in stow["Access-Control-Allow-Methods"]


def test_the_ohif_data_source_configuration_is_served(db: None) -> None:
    response = anonymous_client().get("/dicomweb/ohif-config.json")
    assert response.status_code == 200
    config = response.json()
    (source,) = config["dataSources"]
    assert source["namespace"] == "@ohif/extension-default.dataSourcesModule.dicomweb"
    assert source["configuration"]["qidoRoot"] == "http://testserver/dicomweb"
    assert source["configuration"]["wadoRoot"] == "http://testserver/dicomweb"
    assert source["configuration"]["wadoUriRoot"] == "http://testserver/dicomweb/wado"
    assert config["defaultDataSourceName"] == source["sourceName"]
