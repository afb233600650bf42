"""Which studies a user may see — the one check for every page, API,
DICOMweb endpoint, download and websocket.

A user sees a study when

* they hold an active membership at the institution that owns it, or
* they are a reader at an institution the study is granted to by an active
  StudyGrant (consultations create and end these grants).

Unknown and forbidden look the same: ``access_study`` raises Http404 for both.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from imaging.models import Study, StudyGrant
from institutions import permissions
from institutions.models import Institution, Role, User

# Roles that may read a study granted to their institution.
GRANTEE_ROLES = (Role.READER,)
# Roles that may upload to their institution's archive.
UPLOADER_ROLES = (Role.CLINIC_STAFF, Role.PHYSICIAN, Role.READER, Role.INSTITUTION_ADMIN)


def visible_studies(user: User | object) -> QuerySet[Study]:
    """Every study *user* may see (no ordering applied)."""
    own = permissions.institutions_of(user)
    granted_to = permissions.institutions_of(user, roles=GRANTEE_ROLES)
    now = timezone.now()
    active_grant = StudyGrant.objects.filter(
        study=OuterRef("pk"),
        institution__in=granted_to,
        revoked_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return Study.objects.filter(Q(institution__in=own) | Q(Exists(active_grant)))


def can_see_study(user: User | object, study: Study) -> bool:
    return visible_studies(user).filter(pk=study.pk).exists()


def access_study(user: User | object, study_instance_uid: str) -> Study:
    """The study with this UID that *user* may see, or Http404.

    The same UID can exist at two institutions (each upload is its own
    study); the user's own institution's copy wins, then the oldest grant.
    """
    own = set(permissions.institutions_of(user).values_list("pk", flat=True))
    candidates = (
        visible_studies(user).filter(study_instance_uid=study_instance_uid).select_related("institution", "patient")
    )
    studies = sorted(candidates, key=lambda study: (study.institution_id not in own, study.pk))
    if not studies:
        raise Http404("No such study")
    return studies[0]


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
