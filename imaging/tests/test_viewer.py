"""The viewer page (/studies/<uid>/viewer/): who gets it, what it tells the bundle, what it audits.

The page needs the built bundle's manifest (frontend/dist/manifest.json, from
`make frontend`; `make test` builds it first).
"""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.test import Client

from clinicnet.audit.models import AuditEvent
from imaging.models import Study
from imaging.services import study_grant
from imaging.testing import make_study
from institutions.models import Institution, User
from institutions.testing import anonymous_client, client_for

pytestmark = pytest.mark.skipif(
    not (settings.DJANGO_VITE["default"]["manifest_path"]).exists(),
    reason="the viewer bundle is not built: run `make frontend`",
)


@pytest.fixture
def ct(clinic: Institution) -> Study:
    return make_study(clinic, "CT_small.dcm")


def _url(study: Study) -> str:
    return f"/studies/{study.study_instance_uid}/viewer/"


def _config(response: object) -> dict[str, object]:
    html = response.content.decode()  # type: ignore[attr-defined]
    found = re.search(r'<script id="viewer-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page has no #viewer-config"
    return json.loads(found.group(1))


def _views(study: Study) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="study.view", object_id=study.study_instance_uid).order_by("id"))


def test_anonymous_visitors_are_sent_to_sign_in(ct: Study) -> None:
    response = anonymous_client().get(_url(ct))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert _url(ct) in response["Location"].replace("%2F", "/")
    assert _views(ct) == []


def test_a_doctor_of_the_owning_clinic_gets_the_viewer_shell(ct: Study, doctor: User) -> None:
    response = client_for(doctor).get(_url(ct))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="viewer"' in html
    # The content-hashed bundle from the manifest, not the dev server.
    assert re.search(r'<script type="module"[^>]+src="/static/viewer/assets/[^"]+\.js"', html)


def test_the_config_names_the_study_the_dicomweb_root_and_the_language(ct: Study, doctor: User) -> None:
    config = _config(client_for(doctor).get(_url(ct)))
    assert config["studyInstanceUID"] == ct.study_instance_uid
    assert config["dicomwebRoot"] == "/dicomweb"
    assert config["language"] == "en"  # the persona's saved language
    assert config["homeUrl"] == "/"


def test_the_config_speaks_korean_for_a_korean_user(ct: Study, doctor: User) -> None:
    doctor.language = "ko"
    doctor.save(update_fields=["language"])
    response = client_for(doctor).get(_url(ct))
    assert _config(response)["language"] == "ko"
    assert '<html lang="ko"' in response.content.decode()


def test_people_of_other_institutions_get_404_like_an_unknown_study(ct: Study, outsider: User, reader: User) -> None:
    # The reader's health center has no grant for this study: it is as unknown to them as to the outsider.
    for user in (outsider, reader):
        assert client_for(user).get(_url(ct)).status_code == 404
    assert client_for(outsider).get("/studies/1.2.3.4.5.6.7.8.9/viewer/").status_code == 404
    assert _views(ct) == []


def test_a_reader_sees_a_study_granted_to_their_health_center(
    ct: Study, reader: User, health_center: Institution, doctor: User
) -> None:
    study_grant(study=ct, institution=health_center, reason="consultation", granted_by=doctor)
    response = client_for(reader).get(_url(ct))
    assert response.status_code == 200
    assert _config(response)["studyInstanceUID"] == ct.study_instance_uid


def test_unknown_study_uids_answer_404(doctor: User) -> None:
    client = client_for(doctor)
    assert client.get("/studies/1.2.840.99999.1/viewer/").status_code == 404
    assert client.get("/studies/not-a-uid/viewer/").status_code == 404


def test_each_page_view_writes_one_study_view_audit_row(ct: Study, doctor: User) -> None:
    client = client_for(doctor)
    client.get(_url(ct))
    client.get(_url(ct))
    events = _views(ct)
    assert len(events) == 2
    event = events[0]
    assert event.actor_id == doctor.pk
    assert event.institution_id == ct.institution_id
    assert event.object_type == "study"


def test_the_page_is_never_cached(ct: Study, doctor: User) -> None:
    response = client_for(doctor).get(_url(ct))
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert "no-store" in cache_control


def test_other_methods_are_refused_without_an_audit_row(ct: Study, doctor: User) -> None:
    client = Client()  # no CSRF enforcement: the method check itself answers
    client.force_login(doctor, backend="institutions.backends.EmailOrUsernameBackend")
    assert client.post(_url(ct)).status_code == 405
    assert _views(ct) == []
