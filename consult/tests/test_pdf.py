"""The report PDF carries its Korean text (embedded Noto Sans CJK), as a text extractor reads it back."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from consult import services
from consult.models import Consultation
from consult.pdf import find_fonts
from consult.tests.helpers import bring_to
from institutions.models import User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db


def _text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    text = "".join(page.extract_text() for page in reader.pages)
    # fpdf2 writes CFF (OpenType) CJK fonts with an embedded CMap encoding, which pypdf
    # decodes one byte at a time: each 2-byte code comes out as NUL + the right character
    # (mapped through the PDF's ToUnicode table). Dropping the NULs leaves the text as written.
    return text.replace("\x00", "")


def test_the_korean_font_is_found() -> None:
    fonts = find_fonts()
    assert "CJK" in fonts["regular"].path


def test_the_pdf_contains_the_korean_report_text(consultation: Consultation, doctor: User, reader: User) -> None:
    bring_to(Consultation.Status.READING, consultation, doctor, reader)
    services.report_save_draft(
        consultation=consultation,
        actor=reader,
        findings="우측 폐 하엽에 8 mm 크기의 경계가 명확한 결절이 있습니다.",
        impression="양성 결절 가능성이 높으나 3개월 후 추적 CT를 권합니다.",
    )
    report = services.report_sign(consultation=consultation, actor=reader)
    client = client_for(doctor)
    client.cookies["clinicnet_language"] = "ko"
    doctor.language = "ko"
    doctor.save(update_fields=["language"])
    response = client.get(f"/consultations/{consultation.uuid}/report.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    data = response.content
    assert data.startswith(b"%PDF")
    assert b"NotoSansCJK" in data  # the font is embedded, not left to the reader's machine
    text = _text(data)
    assert "우측 폐 하엽에 8 mm 크기의 경계가 명확한 결절이 있습니다." in text
    assert "양성 결절 가능성이 높으나 3개월 후 추적 CT를 권합니다." in text
    assert "폐 결절이 있습니까?" in text  # the clinical question
    assert "이의사" in text and "김영상" in text
    assert report.content_hash in text


def test_without_a_korean_font_the_pdf_is_refused_with_a_reason(
    consultation: Consultation, doctor: User, reader: User, settings
) -> None:
    bring_to(Consultation.Status.REPORTED, consultation, doctor, reader)
    settings.CONSULT_PDF_FONT = "/nonexistent/font.ttc"
    find_fonts.cache_clear()
    try:
        response = client_for(doctor).get(
            f"/consultations/{consultation.uuid}/report.pdf", headers={"accept": "application/json"}
        )
    finally:
        settings.CONSULT_PDF_FONT = ""
        find_fonts.cache_clear()
    assert response.status_code == 503
    assert "Korean font" in response.json()["error"]
