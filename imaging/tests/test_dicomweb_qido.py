"""QIDO-RS: matching keys, wildcards, Korean names, includefield, paging, query counts."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from django.test import Client
from pydicom.uid import generate_uid

from imaging.ingest import EntryPoint, IngestSession
from imaging.models import Study
from imaging.testing import testdata_path
from institutions.models import Institution, User
from institutions.testing import client_for
from institutions.tokens import token_create

KOREAN = "Hong^Gildong=洪^吉洞=홍^길동"


def ingest_variant(institution: Institution, folder: Path, source: str = "CT_small.dcm", **attributes: object) -> Study:
    """One of pydicom's files with new UIDs and the given attributes, ingested for *institution*."""
    ds = pydicom.dcmread(testdata_path(source))
    ds.StudyInstanceUID = attributes.pop("StudyInstanceUID", None) or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    with IngestSession(institution=institution, entry_point=EntryPoint.IMPORT) as session:
        (result,) = [session.add_file(path)]
    assert result.ok, result.reason
    return Study.objects.get(institution=institution, study_instance_uid=ds.StudyInstanceUID)


@pytest.fixture
def studies(clinic: Institution, other_clinic: Institution, tmp_path: Path) -> dict[str, Study]:
    return {
        "hong": ingest_variant(
            clinic, tmp_path, PatientName=KOREAN, PatientID="P001", StudyDate="20240315", AccessionNumber="ACC1",
            StudyDescription="Chest CT", ReferringPhysicianName="Kim^Doctor", StudyTime="101500",
        ),
        "lee": ingest_variant(
            clinic, tmp_path, "MR_small.dcm", PatientName="Lee^Minsu=李^敏洙=이^민수", PatientID="P002",
            StudyDate="20231201", AccessionNumber="ACC2", StudyDescription="Brain MR", StudyTime="153000",
        ),
        "park": ingest_variant(
            clinic, tmp_path, PatientName="PARK^JIWOO", PatientID="P003", StudyDate="20250101", AccessionNumber="X9",
        ),
        "other": ingest_variant(other_clinic, tmp_path, PatientName="Hong^Other", PatientID="P001"),
    }  # fmt: skip


def _uids(response: object) -> set[str]:
    assert response.status_code == 200, response.content  # type: ignore[attr-defined]
    return {item["0020000D"]["Value"][0] for item in response.json()}  # type: ignore[attr-defined]


def _search(client: Client, **params: str) -> set[str]:
    return _uids(client.get("/dicomweb/studies", params))


def test_patient_name_matches_any_component_group_case_insensitively(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    hong, lee = studies["hong"].study_instance_uid, studies["lee"].study_instance_uid
    assert _search(client, PatientName="hong*") == {hong}
    assert _search(client, PatientName="HONG^GILDONG") == {hong}
    assert _search(client, PatientName="홍*") == {hong}
    assert _search(client, PatientName="홍^길동") == {hong}
    assert _search(client, PatientName="李*") == {lee}
    assert _search(client, PatientName="?ee^*") == {lee}
    assert _search(client, PatientName="*민수") == {lee}
    assert _search(client, **{"00100010": "park*"}) == {studies["park"].study_instance_uid}
    assert _search(client, PatientName="hong") == set()  # no wildcard: the whole group must match


def test_fuzzy_matching_finds_a_name_by_the_start_of_any_component(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    assert _search(client, PatientName="gil", fuzzymatching="true") == {studies["hong"].study_instance_uid}
    assert _search(client, PatientName="gil") == set()


def test_korean_names_come_back_as_utf8_person_name_objects(studies: dict[str, Study], doctor: User) -> None:
    response = client_for(doctor).get("/dicomweb/studies", {"PatientID": "P001"})
    assert response["Content-Type"] == "application/dicom+json"
    assert "홍^길동".encode() in response.content  # not \\u-escaped
    (study,) = response.json()
    assert study["00100010"] == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Hong^Gildong", "Ideographic": "洪^吉洞", "Phonetic": "홍^길동"}],
    }
    assert study["00080005"]["Value"] == ["ISO_IR 192"]


def test_dates_times_ids_modalities_and_uid_lists_match(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    hong, lee, park = (studies[k].study_instance_uid for k in ("hong", "lee", "park"))
    assert _search(client, StudyDate="20240101-20241231") == {hong}
    assert _search(client, StudyDate="-20240101") == {lee}
    assert _search(client, StudyDate="20240315") == {hong}
    assert _search(client, StudyDate="20240101-") == {hong, park}
    assert _search(client, StudyTime="1000-1200") == {hong}
    assert _search(client, AccessionNumber="ACC*") == {hong, lee}
    assert _search(client, PatientID="P002") == {lee}
    assert _search(client, ModalitiesInStudy="MR") == {lee}
    assert _search(client, ModalitiesInStudy="CT") == {hong, park}
    assert _search(client, StudyInstanceUID=f"{hong},{park}") == {hong, park}
    assert _search(client, StudyDescription="*ct") == {hong}
    assert _search(client, ReferringPhysicianName="kim*") == {hong}


def test_study_answers_carry_the_counts_and_a_retrieve_url(studies: dict[str, Study], doctor: User) -> None:
    response = client_for(doctor).get("/dicomweb/studies", {"PatientID": "P002"})
    (study,) = response.json()
    assert study["00201206"]["Value"] == [1]
    assert study["00201208"]["Value"] == [1]
    assert study["00080061"]["Value"] == ["MR"]
    assert study["00081190"]["Value"] == [f"http://testserver/dicomweb/studies/{studies['lee'].study_instance_uid}"]
    assert list(study) == sorted(study)


def test_includefield_adds_attributes_from_the_stored_headers(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    (plain,) = client.get("/dicomweb/studies", {"PatientID": "P001"}).json()
    assert "00101010" not in plain and "00080070" not in plain
    (study,) = client.get("/dicomweb/studies", {"PatientID": "P001", "includefield": "00080070"}).json()
    assert study["00080070"]["Value"]  # Manufacturer, from the instance's header
    (series,) = client.get(f"/dicomweb/studies/{studies['hong'].study_instance_uid}/series?includefield=all").json()
    assert series["00080060"]["Value"] == ["CT"]
    assert series["00100010"]["Value"][0]["Phonetic"] == "홍^길동"
    (instance,) = client.get(
        f"/dicomweb/studies/{studies['hong'].study_instance_uid}/instances?includefield=all"
    ).json()
    assert instance["00280100"]["Value"] == [16]  # BitsAllocated, from the stored metadata
    assert "7FE00010" not in instance


def test_series_and_instance_searches_match_their_own_keys(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    assert len(client.get("/dicomweb/series", {"Modality": "MR"}).json()) == 1
    assert len(client.get("/dicomweb/series", {"Modality": "CT"}).json()) == 2
    found = client.get("/dicomweb/instances", {"PatientName": "이*"}).json()
    assert [i["00080060"]["Value"] for i in found] == [["MR"]]
    sop_class = found[0]["00080016"]["Value"][0]
    assert len(client.get("/dicomweb/instances", {"SOPClassUID": sop_class}).json()) == 1
    assert client.get("/dicomweb/instances", {"SeriesNumber": "abc"}).status_code == 400


def test_limit_and_offset_page_through_with_a_warning_when_more_follow(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    first = client.get("/dicomweb/studies", {"limit": "2"})
    assert len(first.json()) == 2
    assert "additional results" in first["Warning"]
    rest = client.get("/dicomweb/studies", {"limit": "2", "offset": "2"})
    assert len(rest.json()) == 1
    assert "Warning" not in rest
    assert _uids(first) | _uids(rest) == {studies[k].study_instance_uid for k in ("hong", "lee", "park")}


def test_bad_queries_answer_400_and_unsupported_keys_a_warning(studies: dict[str, Study], doctor: User) -> None:
    client = client_for(doctor)
    assert client.get("/dicomweb/studies", {"NoSuchKeyword": "x"}).status_code == 400
    assert client.get("/dicomweb/studies", {"StudyDate": "2024-13"}).status_code == 400
    assert client.get("/dicomweb/studies", {"limit": "-1"}).status_code == 400
    assert client.get("/dicomweb/studies", {"includefield": "Nonsense"}).status_code == 400
    response = client.get("/dicomweb/studies", {"PatientAge": "040Y"})
    assert response.status_code == 200
    assert "PatientAge" in response["Warning"]
    assert client.get("/dicomweb/studies", HTTP_ACCEPT="image/png").status_code == 406
    assert client.get("/dicomweb/studies", HTTP_ACCEPT="application/json").status_code == 200


def test_an_empty_answer_is_an_empty_array(studies: dict[str, Study], doctor: User) -> None:
    response = client_for(doctor).get("/dicomweb/studies", {"PatientID": "nobody"})
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize("url", ["/dicomweb/studies", "/dicomweb/series", "/dicomweb/instances"])
def test_list_searches_take_a_fixed_number_of_queries(
    url: str, clinic: Institution, doctor: User, tmp_path: Path, django_assert_max_num_queries: object
) -> None:
    for number in range(6):
        ingest_variant(clinic, tmp_path, PatientName=f"Patient^{number}", PatientID=f"Q{number}")
    client = Client(headers={"authorization": f"Bearer {token_create(user=doctor, name='t')[1]}"})
    client.get(url)  # notes the token's last use (at most once a minute)
    # the token (with its user), the user's memberships, the search, the representative headers, the audit row
    with django_assert_max_num_queries(5):  # type: ignore[operator]
        response = client.get(url, {"includefield": "all"} if url != "/dicomweb/instances" else {})
    assert len(response.json()) == 6


def test_searches_are_audited(studies: dict[str, Study], doctor: User) -> None:
    from clinicnet.audit.models import AuditEvent

    client_for(doctor).get("/dicomweb/studies", {"PatientName": "hong*"})
    event = AuditEvent.objects.filter(action="study.search").latest("id")
    assert event.actor == doctor
    assert "PatientName=hong" in event.detail["query"]
    assert event.detail["results"] == 1


def test_a_common_patient_name_is_matched_inside_the_study_search(
    studies: dict[str, Study], doctor: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("imaging.dicomweb.qido.MAX_PATIENT_IDS", 0)  # every name counts as common
    client = client_for(doctor)
    assert _search(client, PatientName="홍*") == {studies["hong"].study_instance_uid}
    assert _search(client, PatientName="lee^minsu") == {studies["lee"].study_instance_uid}
