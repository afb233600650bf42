"""Which studies a user may see — the one check for every page, API,
DICOMweb endpoint, download and websocket.

A user sees a study when

* they hold an active membership at the institution that owns it, or
* they are a reader at an institution the study is granted to by an active
  StudyGrant (consultations create and end these grants).

Unknown and forbidden look the same: ``access_study`` raises Http404 for both.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from imaging.models import Study, StudyGrant
from institutions import permissions
from institutions.models import Institution, Role, User

# Roles that may read a study granted to their institution.
GRANTEE_ROLES = (Role.READER,)
# Roles that may upload to their institution's archive.
UPLOADER_ROLES = (Role.CLINIC_STAFF, Role.PHYSICIAN, Role.READER, Role.INSTITUTION_ADMIN)


def _scopes(user: User | object) -> tuple[list[int], list[int]]:
    """Ids of the user's active institutions, and of those where they read."""
    rows = list(permissions.active_memberships(user).values_list("institution_id", "role"))
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


def access_study(user: User | object, study_instance_uid: str) -> Study:
    """The study with this UID that *user* may see, or Http404.

    The same UID can exist at two institutions (each upload is its own
    study); the user's own institution's copy wins, then the oldest grant.
    Two plain index lookups rather than one OR-ed query: this runs for every
    frame the viewer fetches.
    """
    own, reading = _scopes(user)
    studies = Study.objects.filter(study_instance_uid=study_instance_uid).select_related("institution", "patient")
    study = studies.filter(institution_id__in=own).order_by("pk").first() if own else None
    if study is None and reading:
        study = studies.filter(pk__in=_granted_to(reading).values("study_id")).order_by("pk").first()
    if study is None:
        raise Http404("No such study")
    return study


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
