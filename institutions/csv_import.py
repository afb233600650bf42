"""Import institutions from a CSV file: validate every row, then apply.

Used by ``manage.py import_institutions`` and by the platform admin's import
page, so both give the same report. The file is UTF-8 (a BOM is fine) with a
header row in English or Korean; see README.md for the columns.

Rules:

* every row is validated before anything is written;
* when any row is bad nothing is written, unless ``skip_invalid`` is set, in
  which case the good rows go in and the bad ones are reported;
* rows are matched to existing institutions by code, so importing the same
  file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from institutions.models import AETitle, Institution, ae_title_validator

# Canonical column name → accepted header spellings (compared after
# stripping spaces and lower-casing).
COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "요양기관기호", "기관코드"),
    "name_ko": ("name_ko", "기관명", "기관명(한글)", "한글기관명"),
    "name_en": ("name_en", "영문기관명", "기관명(영문)", "영문명"),
    "kind": ("kind", "종별", "기관종별"),
    "health_center_code": ("health_center_code", "소속보건소", "소속보건소코드", "관할보건소"),
    "address": ("address", "주소"),
    "phone": ("phone", "전화번호", "연락처"),
    "active": ("active", "사용", "사용여부"),
    "pilot": ("pilot", "시범기관", "시범"),
    "accepts_consultations": ("accepts_consultations", "판독의뢰수신", "판독수신"),
    "ae_titles": ("ae_titles", "ae타이틀", "aetitle", "ae_title"),
}
REQUIRED_COLUMNS = ("code", "name_ko", "kind")

KIND_VALUES: dict[str, str] = {
    "health_center": Institution.Kind.HEALTH_CENTER,
    "보건소": Institution.Kind.HEALTH_CENTER,
    "hospital": Institution.Kind.HOSPITAL,
    "병원": Institution.Kind.HOSPITAL,
    "clinic": Institution.Kind.CLINIC,
    "의원": Institution.Kind.CLINIC,
    "dental_clinic": Institution.Kind.DENTAL_CLINIC,
    "치과의원": Institution.Kind.DENTAL_CLINIC,
    "치과": Institution.Kind.DENTAL_CLINIC,
}
TRUE_VALUES = {"1", "true", "yes", "y", "예", "o", "사용"}
FALSE_VALUES = {"0", "false", "no", "n", "아니오", "x", "미사용"}
PHONE_RE = re.compile(r"^[0-9+()\- ]{7,20}$")
MAX_ROWS = 20_000


@dataclass
class RowResult:
    line: int
    code: str
    name: str = ""
    action: str = ""  # created, updated, unchanged, invalid
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    applied: bool = False

    @property
    def invalid_rows(self) -> list[RowResult]:
        return [row for row in self.rows if row.errors]

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.invalid_rows

    def summary(self) -> dict[str, int]:
        return {action: self.count(action) for action in ("created", "updated", "unchanged", "invalid")}


@dataclass
class _Row:
    result: RowResult
    values: dict[str, object]
    ae_titles: list[str] | None


def _normalise_header(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def _header_map(header: list[str]) -> tuple[dict[str, int], list[str]]:
    lookup = {alias.lower(): canonical for canonical, aliases in COLUMNS.items() for alias in aliases}
    mapping: dict[str, int] = {}
    errors: list[str] = []
    for index, raw in enumerate(header):
        key = _normalise_header(raw)
        if not key:
            continue
        canonical = lookup.get(key)
        if canonical is None:
            errors.append(_("Unknown column “%(name)s”.") % {"name": raw.strip()})
        elif canonical in mapping:
            errors.append(_("Column “%(name)s” appears twice.") % {"name": raw.strip()})
        else:
            mapping[canonical] = index
    for required in REQUIRED_COLUMNS:
        if required not in mapping:
            errors.append(_("Required column “%(name)s” is missing.") % {"name": required})
    return mapping, errors


def _decode(data: bytes) -> tuple[str | None, str | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp949")
    except UnicodeDecodeError:
        return None, _("The file is not UTF-8 text. Save it as “CSV UTF-8” and try again.")
    return None, _(
        "The file looks like EUC-KR/CP949 (Excel's default “CSV” in Korean Windows). "
        "Save it as “CSV UTF-8” and try again."
    )


def _parse_bool(raw: str, column: str, errors: list[str]) -> bool | None:
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    errors.append(_("%(column)s must be yes or no, not “%(value)s”.") % {"column": column, "value": raw})
    return None


def _parse_row(line: int, cells: list[str], mapping: dict[str, int]) -> _Row:
    def cell(name: str) -> str | None:
        index = mapping.get(name)
        if index is None:
            return None
        return cells[index].strip() if index < len(cells) else ""

    code = cell("code") or ""
    result = RowResult(line=line, code=code, name=cell("name_ko") or "")
    errors = result.errors
    values: dict[str, object] = {}

    if not code:
        errors.append(_("The institution code is empty."))
    elif not re.fullmatch(r"\d{8}", code):
        errors.append(_("Institution code “%(code)s” is not 8 digits.") % {"code": code})
    values["code"] = code

    name_ko = cell("name_ko") or ""
    if not name_ko:
        errors.append(_("The Korean name is empty."))
    elif len(name_ko) > 200:
        errors.append(_("The Korean name is longer than 200 characters."))
    values["name_ko"] = name_ko

    raw_kind = cell("kind") or ""
    kind = KIND_VALUES.get(raw_kind.strip().lower())
    if kind is None:
        errors.append(
            _("Kind “%(kind)s” is not one of health_center/보건소, hospital/병원, clinic/의원, dental_clinic/치과의원.")
            % {"kind": raw_kind}
        )
    values["kind"] = kind

    for name, limit in (("name_en", 200), ("address", 300), ("phone", 40)):
        value = cell(name)
        if value is None:
            continue
        if len(value) > limit:
            errors.append(_("%(column)s is longer than %(limit)d characters.") % {"column": name, "limit": limit})
        values[name] = value
    phone = values.get("phone")
    if isinstance(phone, str) and phone and not PHONE_RE.match(phone):
        errors.append(_("Phone number “%(phone)s” is not a phone number.") % {"phone": phone})

    hc_code = cell("health_center_code")
    values["health_center_code"] = hc_code or ""
    if kind == Institution.Kind.HEALTH_CENTER and hc_code:
        errors.append(_("A health center cannot belong to another health center."))
    if kind is not None and kind != Institution.Kind.HEALTH_CENTER and not hc_code:
        errors.append(_("The affiliated health center code is empty; every clinic and hospital belongs to one."))

    for column, attribute in (
        ("active", "is_active"),
        ("pilot", "is_pilot"),
        ("accepts_consultations", "accepts_consultations"),
    ):
        raw = cell(column)
        if raw is None:
            continue
        if raw == "":
            continue
        parsed = _parse_bool(raw, column, errors)
        if parsed is not None:
            values[attribute] = parsed

    ae_titles: list[str] | None = None
    raw_ae = cell("ae_titles")
    if raw_ae is not None:
        ae_titles = [title for title in re.split(r"[;|\s]+", raw_ae) if title]
        for title in ae_titles:
            try:
                ae_title_validator(title)
            except ValidationError:
                errors.append(
                    _("AE title “%(title)s” is not valid (1–16 ASCII characters, no backslash).") % {"title": title}
                )
        if len(set(ae_titles)) != len(ae_titles):
            errors.append(_("The same AE title is listed twice."))

    return _Row(result=result, values=values, ae_titles=ae_titles)


def _cross_check(rows: list[_Row]) -> None:
    """Checks that need the whole file and the database."""
    seen_codes: dict[str, int] = {}
    for row in rows:
        code = row.result.code
        if code and code in seen_codes:
            row.result.errors.append(
                _("Code %(code)s already appears on line %(line)d.") % {"code": code, "line": seen_codes[code]}
            )
        elif code:
            seen_codes[code] = row.result.line

    seen_ae: dict[str, tuple[str, int]] = {}
    for row in rows:
        for title in row.ae_titles or []:
            other = seen_ae.get(title)
            if other and other[0] != row.result.code:
                row.result.errors.append(
                    _("AE title “%(title)s” is also given on line %(line)d.") % {"title": title, "line": other[1]}
                )
            seen_ae.setdefault(title, (row.result.code, row.result.line))
    taken = dict(AETitle.objects.filter(ae_title__in=list(seen_ae)).values_list("ae_title", "institution__code"))
    for row in rows:
        for title in row.ae_titles or []:
            owner = taken.get(title)
            if owner and owner != row.result.code:
                row.result.errors.append(
                    _("AE title “%(title)s” already belongs to institution %(code)s.") % {"title": title, "code": owner}
                )

    existing = {
        inst.code: inst for inst in Institution.objects.filter(code__in=[r.result.code for r in rows if r.result.code])
    }
    for row in rows:
        current = existing.get(row.result.code)
        if (
            current is not None
            and current.kind == Institution.Kind.HEALTH_CENTER
            and row.values.get("kind") not in (None, Institution.Kind.HEALTH_CENTER)
            and current.affiliates.exists()
        ):
            row.result.errors.append(
                _("%(code)s is a health center with affiliated institutions; it cannot change kind.")
                % {"code": row.result.code}
            )

    # Health centers: those in the database plus the valid ones in this file.
    file_centers = {
        row.result.code
        for row in rows
        if row.values.get("kind") == Institution.Kind.HEALTH_CENTER and not row.result.errors
    }
    db_centers = set(Institution.objects.filter(kind=Institution.Kind.HEALTH_CENTER).values_list("code", flat=True))
    # A health center in the database that this file turns into something else no longer counts.
    demoted = {row.result.code for row in rows if row.values.get("kind") not in (None, Institution.Kind.HEALTH_CENTER)}
    centers = (db_centers - demoted) | file_centers
    for row in rows:
        hc_code = row.values.get("health_center_code")
        if hc_code and hc_code not in centers:
            row.result.errors.append(
                _("Health center %(code)s is neither in the file nor registered as a health center.")
                % {"code": hc_code}
            )


def _apply_row(row: _Row) -> str:
    values = dict(row.values)
    code = str(values.pop("code"))
    hc_code = values.pop("health_center_code")
    values["health_center"] = Institution.objects.get(code=hc_code) if hc_code else None
    institution = Institution.objects.filter(code=code).first()
    if institution is None:
        institution = Institution(code=code)
        if values.get("kind") == Institution.Kind.HEALTH_CENTER:
            institution.accepts_consultations = True
        action = "created"
    else:
        action = "unchanged"
    changed = action == "created"
    for attribute, value in values.items():
        if getattr(institution, attribute) != value:
            setattr(institution, attribute, value)
            changed = True
    if changed:
        institution.full_clean()
        institution.save()
        if action == "unchanged":
            action = "updated"
    if row.ae_titles is not None:
        current = set(institution.ae_titles.values_list("ae_title", flat=True))
        wanted = set(row.ae_titles)
        if current != wanted:
            institution.ae_titles.exclude(ae_title__in=wanted).delete()
            for title in sorted(wanted - current):
                AETitle.objects.create(institution=institution, ae_title=title)
            if action == "unchanged":
                action = "updated"
    return action


def import_institutions_csv(data: bytes, *, dry_run: bool = False, skip_invalid: bool = False) -> ImportReport:
    """Validate *data* as an institutions CSV and, unless told not to, apply it."""
    report = ImportReport(dry_run=dry_run)
    text, error = _decode(data)
    if text is None:
        report.file_errors.append(error or "")
        return report
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        report.file_errors.append(_("The file is empty."))
        return report
    except csv.Error as exc:
        report.file_errors.append(_("The file is not valid CSV: %(error)s") % {"error": exc})
        return report
    mapping, header_errors = _header_map(header)
    if header_errors:
        report.file_errors.extend(header_errors)
        return report

    rows: list[_Row] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_ROWS:
                report.file_errors.append(_("The file has more than %(max)d rows; split it.") % {"max": MAX_ROWS})
                return report
            row = _parse_row(reader.line_num, cells, mapping)
            if len(cells) > len(header):
                row.result.errors.append(_("The row has more cells than the header."))
            rows.append(row)
    except csv.Error as exc:
        report.file_errors.append(
            _("Line %(line)d is not valid CSV: %(error)s") % {"line": reader.line_num, "error": exc}
        )
        return report
    if not rows:
        report.file_errors.append(_("The file has a header but no institutions."))
        return report

    _cross_check(rows)
    report.rows = [row.result for row in rows]
    for row in rows:
        if row.result.errors:
            row.result.action = "invalid"
    if report.invalid_rows and not skip_invalid:
        return report

    valid = [row for row in rows if not row.result.errors]
    # Health centers first, so that affiliates in the same file can point at them.
    valid.sort(key=lambda row: row.values.get("kind") != Institution.Kind.HEALTH_CENTER)
    with transaction.atomic():
        for row in valid:
            row.result.action = _apply_row(row)
        if dry_run:
            transaction.set_rollback(True)
    report.applied = not dry_run
    return report
