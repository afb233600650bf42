"""The signed report as a PDF, Korean text included.

fpdf2 embeds (a subset of) a CJK font: Noto Sans CJK KR from Debian's
``fonts-noto-cjk`` (installed by ``make setup``), found through fontconfig
or at its known Debian path, or the file named by ``CONSULT_PDF_FONT``.
Without such a font Korean would come out as empty boxes, so we refuse with
:class:`FontMissing` instead of producing a wrong document.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from consult.models import Consultation, Report

# Debian's fonts-noto-cjk: collections whose face 1 is the Korean one.
DEBIAN_FONTS = {
    "regular": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 1),
    "bold": ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 1),
}


class FontMissing(Exception):
    """No font that can draw Korean is installed."""


@dataclass(frozen=True)
class FontFile:
    path: str
    index: int


def _parse(spec: str) -> FontFile:
    path, _sep, index = spec.partition(":")
    return FontFile(path, int(index) if index.isdigit() else 0)


def _fc_match(pattern: str) -> FontFile | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
            ["fc-match", "-f", "%{family}|%{file}|%{index}", pattern],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    family, _sep, rest = out.partition("|")
    path, _sep, index = rest.partition("|")
    # fontconfig answers with *some* font for any pattern; only a CJK one will do.
    if "CJK" not in family or not Path(path).is_file():
        return None
    return FontFile(path, int(index) if index.isdigit() else 0)


@functools.cache
def find_fonts() -> dict[str, FontFile]:
    """The regular (and bold, when there is one) font files for Korean text."""
    if settings.CONSULT_PDF_FONT:
        font = _parse(settings.CONSULT_PDF_FONT)
        if not Path(font.path).is_file():
            raise FontMissing(f"CONSULT_PDF_FONT names a missing file: {font.path}")
        return {"regular": font}
    fonts: dict[str, FontFile] = {}
    for style, pattern in (("regular", "Noto Sans CJK KR"), ("bold", "Noto Sans CJK KR:bold")):
        found = _fc_match(pattern)
        if found is None:
            path, index = DEBIAN_FONTS[style]
            found = FontFile(path, index) if Path(path).is_file() else None
        if found is not None:
            fonts[style] = found
    if "regular" not in fonts:
        raise FontMissing("no Korean font: install Debian's fonts-noto-cjk (make setup does) or set CONSULT_PDF_FONT")
    return fonts


class _Document(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("body", size=8)
        self.set_text_color(110, 117, 133)
        self.cell(0, 5, f"{self.footer_text}  ·  {self.page_no()}/{{nb}}", align="C")


def _local(moment: object) -> str:
    if moment is None:
        return "–"
    return date_format(timezone.localtime(moment), "Y-m-d H:i")  # type: ignore[arg-type]


def report_pdf(consultation: Consultation, report: Report, history: list[Report]) -> bytes:
    """A printable PDF of the signed *report*, with the earlier signed versions listed."""
    fonts = find_fonts()
    pdf = _Document(format="A4")
    pdf.set_title(_("Reading report"))
    pdf.set_creator("ClinicNet")
    for style, font in fonts.items():
        pdf.add_font("body", "B" if style == "bold" else "", font.path, collection_font_number=font.index)
    bold = "B" if "bold" in fonts else ""
    pdf.footer_text = f"ClinicNet · {consultation.uuid}"
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    study = consultation.study
    patient = study.patient

    def heading(text: str, size: float = 12) -> None:
        pdf.ln(2)
        pdf.set_font("body", bold, size)
        pdf.set_text_color(20, 33, 61)
        pdf.multi_cell(0, size * 0.6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(28, 36, 48)
        pdf.ln(1)

    def facts(rows: list[tuple[str, str]]) -> None:
        pdf.set_font("body", size=9.5)
        for label, value in rows:
            pdf.set_text_color(106, 117, 133)
            pdf.cell(42, 5.6, label)
            pdf.set_text_color(28, 36, 48)
            pdf.multi_cell(0, 5.6, value or "–", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def body(text: str) -> None:
        pdf.set_font("body", size=10.5)
        pdf.multi_cell(0, 6, text.strip() or "–", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heading(_("Reading report"), 17)
    facts(
        [
            (_("Patient"), f"{patient.display_name}  ({patient.patient_id or '–'})"),
            (
                _("Birth date / sex"),
                f"{patient.birth_date.isoformat() if patient.birth_date else '–'} / {patient.sex or '–'}",
            ),
            (
                _("Study"),
                " · ".join(
                    part
                    for part in (
                        study.study_date.isoformat() if study.study_date else "",
                        "/".join(study.modality_list),
                        study.description,
                    )
                    if part
                ),
            ),
            (_("Accession number"), study.accession_number),
            (
                _("Requested by"),
                f"{consultation.requested_by.get_full_name()} · {consultation.requesting_institution.name_ko}",
            ),
            (_("Read at"), consultation.target_institution.name_ko),
            (_("Priority"), consultation.get_priority_display()),
            (_("Requested at"), _local(consultation.created_at)),
        ]
    )
    heading(_("Clinical question"))
    body(consultation.clinical_question)
    if consultation.clinical_history:
        heading(_("Clinical history"))
        body(consultation.clinical_history)
    if report.is_addendum:
        heading(_("Addendum (version %(version)s)") % {"version": report.version})
        body(report.addendum)
    heading(_("Findings"))
    body(report.findings)
    heading(_("Impression"))
    body(report.impression)

    heading(_("Signature"))
    facts(
        [
            (_("Template"), report.get_kind_display()),
            (_("Version"), str(report.version)),
            (_("Signed by"), report.signed_by.get_full_name() if report.signed_by else "–"),
            (_("Signed at"), _local(report.signed_at)),
            (_("Content hash (sha256)"), report.content_hash),
        ]
    )
    earlier = [version for version in history if version.pk != report.pk]
    if earlier:
        heading(_("Report history"))
        for version in earlier:
            facts(
                [
                    (
                        _("Version %(version)s") % {"version": version.version},
                        f"{_local(version.signed_at)} · "
                        f"{version.signed_by.get_full_name() if version.signed_by else '–'} · "
                        f"{version.content_hash[:16]}…",
                    )
                ]
            )
    return bytes(pdf.output())
