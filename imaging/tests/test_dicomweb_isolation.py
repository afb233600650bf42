"""Tenant isolation: every DICOMweb URL of the clinic's study answers 404 to an outsider.

The outsider (a physician at another clinic) gets the same 404 as for UIDs
that exist nowhere, so nothing tells them which studies exist. Searches
that are not under a study answer with an empty list.
"""

from __future__ import annotations

import pytest
from django.test import Client

from imaging.models import Instance, Study
from imaging.testing import make_study
from institutions.models import Institution, User
from institutions.testing import anonymous_client, client_for
from institutions.tokens import token_create


def _urls(study_uid: str, series_uid: str, sop_uid: str) -> list[str]:
    study = f"/dicomweb/studies/{study_uid}"
    series = f"{study}/series/{series_uid}"
    instance = f"{series}/instances/{sop_uid}"
    return [
        study,
        f"{study}/metadata",
        f"{study}/rendered",
        f"{study}/thumbnail",
        f"{study}/series",
        f"{study}/instances",
        series,
        f"{series}/metadata",
        f"{series}/rendered",
        f"{series}/thumbnail",
        f"{series}/instances",
        instance,
        f"{instance}/metadata",
        f"{instance}/rendered",
        f"{instance}/thumbnail",
        f"{instance}/frames/1",
        f"{instance}/frames/1/rendered",
        f"{instance}/frames/1/thumbnail",
        f"{instance}/bulkdata/7FE00010",
        f"/dicomweb/wado?requestType=WADO&studyUID={study_uid}&seriesUID={series_uid}&objectUID={sop_uid}",
        f"/dicomweb/wado?requestType=WADO&studyUID={study_uid}&seriesUID={series_uid}&objectUID={sop_uid}"
        "&contentType=application/dicom",
    ]


@pytest.fixture
def study(clinic: Institution) -> Study:
    return make_study(clinic, "CT_small.dcm")


def _uids(study: Study) -> tuple[str, str, str]:
    instance = Instance.objects.select_related("series").get(study=study)
    return study.study_instance_uid, instance.series.series_instance_uid, instance.sop_instance_uid


def _token_client(user: User) -> Client:
    return Client(headers={"authorization": f"Bearer {token_create(user=user, name='t')[1]}"})


def test_the_clinics_own_people_get_every_url(study: Study, doctor: User, clerk: User) -> None:
    for client in (client_for(doctor), _token_client(clerk)):
        for url in _urls(*_uids(study)):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.content[:200])


@pytest.mark.parametrize("via", ["session", "token"])
def test_an_outsider_gets_404_on_every_url_of_the_clinics_study(study: Study, outsider: User, via: str) -> None:
    client = client_for(outsider) if via == "session" else _token_client(outsider)
    for url in _urls(*_uids(study)):
        response = client.get(url)
        assert response.status_code == 404, (url, response.status_code)
        assert study.patient.name.encode() not in response.content


def test_unknown_uids_get_the_same_404(study: Study, doctor: User) -> None:
    client = client_for(doctor)
    real = _uids(study)
    # An unknown study: every URL; an unknown series: from the series down; an unknown instance: its URLs.
    for position, first_url in ((0, 0), (1, 6), (2, 11)):
        uids = list(real)
        uids[position] = "1.2.3.999"
        for url in _urls(*uids)[first_url:]:
            assert client.get(url).status_code == 404, url


def test_an_outsiders_searches_do_not_see_the_clinics_study(study: Study, outsider: User) -> None:
    client = _token_client(outsider)
    for url in ("/dicomweb/studies", "/dicomweb/series", "/dicomweb/instances"):
        response = client.get(url, {"StudyInstanceUID": study.study_instance_uid})
        assert response.status_code == 200
        assert response.json() == []


def test_a_reader_sees_the_study_only_while_it_is_granted(
    study: Study, reader: User, health_center: Institution, doctor: User
) -> None:
    from imaging.services import study_grant, study_grant_end

    url = f"/dicomweb/studies/{study.study_instance_uid}/metadata"
    client = _token_client(reader)
    assert client.get(url).status_code == 404
    grant = study_grant(study=study, institution=health_center, reason="consultation", granted_by=doctor)
    assert client.get(url).status_code == 200
    study_grant_end(grant=grant)
    assert client.get(url).status_code == 404


def test_nobody_signed_in_gets_401_and_a_revoked_token_too(study: Study, doctor: User) -> None:
    url = f"/dicomweb/studies/{study.study_instance_uid}/metadata"
    assert anonymous_client().get(url).status_code == 401
    assert anonymous_client().get("/dicomweb/studies").status_code == 401
    token, raw = token_create(user=doctor, name="t")
    client = Client(headers={"authorization": f"Bearer {raw}"})
    assert client.get(url).status_code == 200
    from institutions.tokens import token_revoke

    token_revoke(user=doctor, token_id=token.pk)
    response = client.get(url)
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
