"""Which studies a user may see — the one check for every page, API,
DICOMweb endpoint, download and websocket.

A user sees a study when

* they hold an active membership at the institution that owns it, or
* they are a reader at an institution the study is granted to by an active
  StudyGrant (consultations create and end these grants).

Unknown and forbidden look the same: ``access_study`` raises Http404 for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404

from clinicnet.lib.sql import aware_datetime
from imaging.models import Study, StudyGrant
from institutions import permissions
from institutions.middleware import MEMBERSHIPS_ATTRIBUTE
from institutions.models import Institution, Role, User

# Roles that may read a study granted to their institution.
GRANTEE_ROLES = (Role.READER,)
# Roles that may upload to their institution's archive.
UPLOADER_ROLES = (Role.CLINIC_STAFF, Role.PHYSICIAN, Role.READER, Role.INSTITUTION_ADMIN)


def _scopes(user: User | object) -> tuple[list[int], list[int]]:
    """Ids of the user's active institutions, and of those where they read."""
    # ActiveAccessMiddleware has read them already for the user object of this request.
    rows: list[tuple[int, str]] | None = getattr(user, MEMBERSHIPS_ATTRIBUTE, None)
    if rows is None:
        rows = permissions.active_membership_rows(user)
    own = sorted({institution_id for institution_id, _role in rows})
    reading = sorted({institution_id for institution_id, role in rows if role in GRANTEE_ROLES})
    return own, reading


def _granted_to(institution_ids: list[int]) -> QuerySet[StudyGrant]:
    return StudyGrant.objects.active().filter(institution_id__in=institution_ids)


def visible_studies(user: User | object) -> QuerySet[Study]:
    """Every study *user* may see (no ordering applied)."""
    own, reading = _scopes(user)
    condition = Q(institution_id__in=own)
    if reading:
        condition |= Q(pk__in=_granted_to(reading).values("study_id"))
    return Study.objects.filter(condition)


def can_see_study(user: User | object, study: Study) -> bool:
    return visible_studies(user).filter(pk=study.pk).exists()


@dataclass(frozen=True)
class StudyKey:
    """The visible study as :func:`find_study` gives it: the columns a per-frame request needs."""

    pk: int
    institution_id: int
    study_instance_uid: str
    created_at: datetime


def _visible_copy(user: User | object, copies: list[tuple[int, int]]) -> int | None:
    """Of the copies ``(pk, institution id)`` of one Study Instance UID, in pk order, the one *user* may see.

    The same UID can exist at two institutions (each upload is its own study);
    the user's own institution's copy wins, then the oldest grant.
    """
    if not copies:
        return None
    own, reading = _scopes(user)
    for pk, institution_id in copies:
        if institution_id in own:
            return pk
    if reading:
        granted = set(
            _granted_to(reading).filter(study_id__in=[pk for pk, _i in copies]).values_list("study_id", flat=True)
        )
        for pk, _institution_id in copies:
            if pk in granted:
                return pk
    return None


_COPIES = "SELECT id, institution_id, created_at FROM imaging_study WHERE study_instance_uid = %s ORDER BY id"


def _copies(study_instance_uid: str) -> list[tuple[int, int, datetime]]:
    """``(pk, institution id, created at)`` of each study with this UID, in pk order, in one plain query.

    Per frame, like the memberships (``permissions.active_membership_rows``):
    the ORM's building and compiling cost more than the query.
    """
    with connection.cursor() as cursor:
        cursor.execute(_COPIES, [study_instance_uid])
        return [
            (int(pk), int(institution_id), aware_datetime(created)) for pk, institution_id, created in cursor.fetchall()
        ]


def find_study(user: User | object, study_instance_uid: str) -> StudyKey:
    """The key of the study with this UID that *user* may see, or Http404: :func:`access_study` without the row.

    For DICOMweb's per-frame requests (the viewer sends one per slice): the
    copies of the UID in one narrow query, the user's memberships (usually read
    already by ``ActiveAccessMiddleware``), the grants only for a reader who
    does not own a copy.
    """
    rows = _copies(study_instance_uid)
    pk = _visible_copy(user, [(row[0], row[1]) for row in rows])
    for row_pk, institution_id, created_at in rows:
        if row_pk == pk:
            return StudyKey(row_pk, institution_id, study_instance_uid, created_at)
    raise Http404("No such study")


def access_study(user: User | object, study_instance_uid: str) -> Study:
    """The study with this UID that *user* may see, or Http404 (see :func:`_visible_copy` for which copy)."""
    copies = list(
        Study.objects.filter(study_instance_uid=study_instance_uid)
        .select_related("institution", "patient")
        .order_by("pk")
    )
    pk = _visible_copy(user, [(study.pk, study.institution_id) for study in copies])
    for study in copies:
        if study.pk == pk:
            return study
    raise Http404("No such study")


def upload_institutions(user: User | object) -> QuerySet[Institution]:
    """Institutions *user* may upload studies for."""
    return permissions.institutions_of(user, roles=UPLOADER_ROLES)


def upload_institution(user: User | object, code: str | None) -> Institution:
    """The institution an upload goes to: the one named, or the user's only one."""
    choices = upload_institutions(user)
    if code:
        institution = choices.filter(code=code).first()
        if institution is None:
            raise Http404("No such institution")
        return institution
    institutions = list(choices[:2])
    if len(institutions) != 1:
        raise Http404("Say which institution the upload is for")
    return institutions[0]
