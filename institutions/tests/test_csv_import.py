from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from clinicnet.audit.models import AuditEvent
from institutions.csv_import import import_institutions_csv
from institutions.demo import SAMPLE_CSV
from institutions.models import AETitle, Institution

pytestmark = pytest.mark.django_db

HEADER_EN = "code,name_ko,name_en,kind,health_center_code,address,phone,active,pilot,ae_titles\n"
HEADER_KO = "요양기관기호,기관명,영문기관명,종별,소속보건소,주소,전화번호,사용,시범기관,AE타이틀\n"
CENTER = "39100022,동구보건소,Dong-gu HC,health_center,,동구 1,031-100-2000,yes,yes,DONG_HC\n"
CLINIC = "31200101,밝은내과의원,Balgeun,clinic,39100022,동구 2,031-201-0101,yes,no,BALGEUN_CR\n"


def run(text: str, **options: bool) -> object:
    return import_institutions_csv(text.encode("utf-8"), **options)


def test_it_imports_a_good_file_with_english_headers() -> None:
    report = run(HEADER_EN + CENTER + CLINIC)
    assert report.ok and report.applied
    assert report.summary() == {"created": 2, "updated": 0, "unchanged": 0, "invalid": 0}
    clinic = Institution.objects.get(code="31200101")
    assert clinic.health_center.code == "39100022"
    assert clinic.kind == Institution.Kind.CLINIC
    assert clinic.is_pilot is False
    assert list(clinic.ae_titles.values_list("ae_title", flat=True)) == ["BALGEUN_CR"]
    # Health centers accept reading requests unless told otherwise.
    assert Institution.objects.get(code="39100022").accepts_consultations is True


def test_it_imports_korean_headers_and_korean_values() -> None:
    text = HEADER_KO + "39100011,중구보건소,,보건소,,,,예,예,\n" + "31200404,새봄의원,,의원,39100011,,,예,아니오,\n"
    report = run(text)
    assert report.ok
    assert Institution.objects.get(code="31200404").health_center.code == "39100011"


def test_it_accepts_a_byte_order_mark() -> None:
    data = "\ufeff".encode() + (HEADER_EN + CENTER).encode()
    report = import_institutions_csv(data)
    assert report.ok
    assert Institution.objects.filter(code="39100022").exists()


def test_rerunning_the_same_file_changes_nothing() -> None:
    run(HEADER_EN + CENTER + CLINIC)
    before = list(Institution.objects.order_by("code").values())
    report = run(HEADER_EN + CENTER + CLINIC)
    assert report.summary() == {"created": 0, "updated": 0, "unchanged": 2, "invalid": 0}
    assert list(Institution.objects.order_by("code").values()) == before


def test_a_changed_row_updates_by_code() -> None:
    run(HEADER_EN + CENTER + CLINIC)
    report = run(HEADER_EN + CENTER + CLINIC.replace("Balgeun", "Balgeun Clinic").replace("BALGEUN_CR", "BALGEUN_DX"))
    assert report.summary()["updated"] == 1
    clinic = Institution.objects.get(code="31200101")
    assert clinic.name_en == "Balgeun Clinic"
    assert list(clinic.ae_titles.values_list("ae_title", flat=True)) == ["BALGEUN_DX"]


def test_dry_run_reports_but_writes_nothing() -> None:
    report = run(HEADER_EN + CENTER + CLINIC, dry_run=True)
    assert report.summary()["created"] == 2
    assert not report.applied
    assert Institution.objects.count() == 0
    assert AETitle.objects.count() == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1234,이름,,clinic,39100022,,,,,\n", "is not 8 digits"),
        (",이름,,clinic,39100022,,,,,\n", "code is empty"),
        ("31200999,,,clinic,39100022,,,,,\n", "Korean name is empty"),
        ("31200999,이름,,pharmacy,39100022,,,,,\n", "Kind “pharmacy”"),
        ("31200999,이름,,clinic,,,,,,\n", "health center code is empty"),
        ("31200999,이름,,clinic,39999999,,,,,\n", "Health center 39999999 is neither"),
        ("31200999,이름,,clinic,31200101,,,,,\n", "Health center 31200101 is neither"),
        ("31200999,이름,,clinic,39100022,,not-a-phone!,,,\n", "is not a phone number"),
        ("31200999,이름,,clinic,39100022,,,maybe,,\n", "active must be yes or no"),
        ("31200999,이름,,clinic,39100022,,,,,WAY_TOO_LONG_AE_TITLE\n", "AE title “WAY_TOO_LONG_AE_TITLE”"),
        ("31200999,이름,,clinic,39100022,,,,,DONG_HC\n", "is also given on line 2"),
        ("31200101,다른이름,,clinic,39100022,,,,,\n", "already appears on line 3"),
        ("39100033,서구보건소,,health_center,39100022,,,,,\n", "cannot belong to another health center"),
    ],
)
def test_each_kind_of_bad_row_is_reported_with_its_line(row: str, message: str) -> None:
    report = run(HEADER_EN + CENTER + CLINIC + row)
    assert not report.applied
    bad = report.invalid_rows
    assert len(bad) == 1, [r.errors for r in report.rows]
    assert bad[0].line == 4
    assert any(message in error for error in bad[0].errors), bad[0].errors
    # One bad row stops the whole import.
    assert Institution.objects.count() == 0


def test_an_ae_title_owned_by_another_institution_is_refused() -> None:
    run(HEADER_EN + CENTER + CLINIC)
    report = run(HEADER_EN + "31200202,튼튼의원,,clinic,39100022,,,,,BALGEUN_CR\n")
    assert "already belongs to institution 31200101" in report.invalid_rows[0].errors[0]


def test_skip_invalid_imports_the_good_rows() -> None:
    report = run(HEADER_EN + CENTER + CLINIC + "1234,이름,,clinic,39100022,,,,,\n", skip_invalid=True)
    assert report.applied
    assert report.summary() == {"created": 2, "updated": 0, "unchanged": 0, "invalid": 1}
    assert Institution.objects.count() == 2


def test_a_clinic_of_an_invalid_health_center_is_invalid_too() -> None:
    bad_center = "3910002X,동구보건소,,health_center,,,,,,\n"
    report = run(HEADER_EN + bad_center + CLINIC.replace("39100022", "3910002X"), skip_invalid=True)
    assert report.summary()["invalid"] == 2
    assert Institution.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (HEADER_EN.encode(), "header but no institutions"),
        (b"code,name,kind\n1,2,3\n", "Unknown column “name”"),
        (b"code,kind\n", "Required column “name_ko” is missing"),
        (HEADER_KO.encode("cp949") + "39100011,중구보건소,,보건소,,,,예,예,\n".encode("cp949"), "EUC-KR/CP949"),
        (b"\xff\xfe\x00\x00garbage\x80\x81", "not UTF-8"),
    ],
)
def test_file_level_problems_are_reported(data: bytes, message: str) -> None:
    report = import_institutions_csv(data)
    assert any(message in error for error in report.file_errors), report.file_errors
    assert Institution.objects.count() == 0


def test_the_command_reports_lines_and_fails_on_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER_EN + CENTER + "1234,이름,,clinic,39100022,,,,,\n", encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError, match="1 invalid rows; nothing was written"):
        call_command("import_institutions", str(path), stdout=StringIO(), stderr=err)
    assert "line 3 (1234): Institution code “1234” is not 8 digits." in err.getvalue()
    assert Institution.objects.count() == 0


def test_the_command_imports_the_shipped_sample_and_is_idempotent() -> None:
    out = StringIO()
    call_command("import_institutions", str(SAMPLE_CSV), stdout=out)
    assert "11 created, 0 updated, 0 unchanged, 0 invalid (applied)" in out.getvalue()
    assert Institution.objects.filter(kind=Institution.Kind.HEALTH_CENTER).count() == 5
    out = StringIO()
    call_command("import_institutions", str(SAMPLE_CSV), stdout=out)
    assert "0 created, 0 updated, 11 unchanged" in out.getvalue()
    assert AuditEvent.objects.filter(action="institutions.import").count() == 2


def test_the_command_dry_run_writes_nothing() -> None:
    out = StringIO()
    call_command("import_institutions", str(SAMPLE_CSV), "--dry-run", stdout=out)
    assert "11 created" in out.getvalue() and "dry run" in out.getvalue()
    assert Institution.objects.count() == 0
