"""Demo institutions and accounts for `make run` (idempotent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from institutions.csv_import import import_institutions_csv
from institutions.models import Institution, Membership, Role, User

SAMPLE_CSV = Path(__file__).parent / "sample" / "pilot_institutions.csv"
DEMO_PASSWORD = "clinicnet-demo"  # noqa: S105  (documented demo password)

# username, name, e-mail, language, [(institution code, role)], platform admin
DEMO_ACCOUNTS: list[tuple[str, str, str, str, list[tuple[str, str]], bool]] = [
    ("admin", "플랫폼 관리자", "admin@clinicnet.local", "ko", [], True),
    ("reader", "김영상", "reader@dong-hc.clinicnet.local", "ko", [("39100022", Role.READER)], False),
    ("hcadmin", "정보건", "admin@dong-hc.clinicnet.local", "ko", [("39100022", Role.INSTITUTION_ADMIN)], False),
    (
        "doctor",
        "이의사",
        "doctor@balgeun.clinicnet.local",
        "ko",
        [("31200101", Role.PHYSICIAN), ("31200101", Role.INSTITUTION_ADMIN)],
        False,
    ),
    ("clerk", "최접수", "clerk@balgeun.clinicnet.local", "ko", [("31200101", Role.CLINIC_STAFF)], False),
    ("dentist", "박치과", "dentist@hanbit-dental.clinicnet.local", "en", [("31200303", Role.PHYSICIAN)], False),
]


def load(write: Callable[[str], None]) -> list[tuple[str, str]]:
    """Create the sample institutions and demo accounts; returns (username, description) rows."""
    report = import_institutions_csv(SAMPLE_CSV.read_bytes())
    if not report.ok:
        raise RuntimeError(f"sample CSV does not import: {report.file_errors or report.invalid_rows}")
    summary = report.summary()
    write(f"institutions: {summary['created']} created, {summary['updated']} updated, {summary['unchanged']} unchanged")
    rows: list[tuple[str, str]] = []
    for username, name, email, language, memberships, platform_admin in DEMO_ACCOUNTS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"name": name, "email": email, "language": language}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = platform_admin
            user.is_superuser = platform_admin
            user.save()
        described = []
        for code, role in memberships:
            institution = Institution.objects.get(code=code)
            Membership.objects.get_or_create(user=user, institution=institution, role=role)
            described.append(f"{Role(role).label} @ {institution.name_ko}")
        if platform_admin:
            described.append("platform admin")
        rows.append((username, ", ".join(str(d) for d in described)))
    return rows
