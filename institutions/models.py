"""The network: institutions, the people who work in them and their roles."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

institution_code_validator = RegexValidator(
    r"^\d{8}$",
    _("An institution code is the 8-digit Korean healthcare institution code (요양기관기호)."),
)
# DICOM AE titles: up to 16 characters of the default character repertoire,
# no backslash and no control characters (PS3.5 6.2, VR "AE").
ae_title_validator = RegexValidator(
    r"^[ -\[\]-~]{1,16}$",
    _("An AE title has 1 to 16 plain ASCII characters and no backslash."),
)


class User(AbstractUser):
    """A person who signs in. Korean names are kept whole in ``name``."""

    class Language(models.TextChoices):
        KOREAN = "ko", "한국어"
        ENGLISH = "en", "English"

    name = models.CharField(_("name"), max_length=150, blank=True)
    # Required and unique (case-insensitively), unlike AbstractUser's optional e-mail.
    email = models.EmailField(_("email address"))
    language = models.CharField(_("language"), max_length=8, choices=Language.choices, default=Language.KOREAN)

    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.username})" if self.name else self.username

    def clean(self) -> None:
        super().clean()
        self.email = self.email.strip().lower()

    def get_full_name(self) -> str:
        return self.name or self.username

    def get_short_name(self) -> str:
        return self.name or self.username


class Institution(models.Model):
    class Kind(models.TextChoices):
        HEALTH_CENTER = "health_center", _("Public health center")
        HOSPITAL = "hospital", _("Hospital")
        CLINIC = "clinic", _("Clinic")
        DENTAL_CLINIC = "dental_clinic", _("Dental clinic")

    code = models.CharField(_("institution code"), max_length=8, unique=True, validators=[institution_code_validator])
    name_ko = models.CharField(_("name (Korean)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    health_center = models.ForeignKey(
        "self",
        verbose_name=_("affiliated health center"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="affiliates",
        limit_choices_to={"kind": "health_center"},
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_pilot = models.BooleanField(_("pilot institution"), default=False)
    accepts_consultations = models.BooleanField(
        _("accepts reading requests"),
        default=False,
        help_text=_("Health centers read for their affiliates; other institutions only when this is set."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name_ko} ({self.code})"

    @property
    def display_name(self) -> str:
        from django.utils.translation import get_language

        if get_language() == "en" and self.name_en:
            return self.name_en
        return self.name_ko

    def clean(self) -> None:
        if self.kind == self.Kind.HEALTH_CENTER:
            if self.health_center_id is not None:
                raise ValidationError({"health_center": _("A health center is not affiliated to another one.")})
        else:
            if self.health_center_id is None:
                raise ValidationError(
                    {"health_center": _("Every institution other than a health center belongs to one.")}
                )
            if self.health_center is not None and self.health_center.kind != self.Kind.HEALTH_CENTER:
                raise ValidationError(
                    {"health_center": _("The affiliated institution must be a public health center.")}
                )


class AETitle(models.Model):
    """A DICOM AE title an institution's modalities push from (C-STORE)."""

    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="ae_titles")
    ae_title = models.CharField(_("AE title"), max_length=16, unique=True, validators=[ae_title_validator])

    class Meta:
        verbose_name = _("DICOM AE title")
        verbose_name_plural = _("DICOM AE titles")
        ordering = ["ae_title"]

    def __str__(self) -> str:
        return self.ae_title


class Role(models.TextChoices):
    CLINIC_STAFF = "clinic_staff", _("Clinic staff")
    PHYSICIAN = "physician", _("Physician")
    READER = "reader", _("Radiologist / reader")
    INSTITUTION_ADMIN = "institution_admin", _("Institution admin")


class Membership(models.Model):
    """One role a user holds at one institution. A person may hold several."""

    user = models.ForeignKey(User, verbose_name=_("user"), on_delete=models.CASCADE, related_name="memberships")
    institution = models.ForeignKey(
        Institution, verbose_name=_("institution"), on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=24, choices=Role.choices)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "institution", "role"], name="membership_unique_role"),
        ]
        indexes = [models.Index(fields=["institution", "role"])]

    def __str__(self) -> str:
        return f"{self.user} @ {self.institution.code}: {self.get_role_display()}"


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())

    def by_token(self, token: str) -> Invitation | None:
        return self.filter(token_hash=_hash_token(token)).select_related("institution", "invited_by").first()


class Invitation(models.Model):
    """A single-use link that lets someone join an institution with a role.

    Only a hash of the token is stored, so a database dump does not hand out
    working links.
    """

    email = models.EmailField(_("email address"))
    institution = models.ForeignKey(
        Institution, verbose_name=_("institution"), on_delete=models.CASCADE, related_name="invitations"
    )
    role = models.CharField(_("role"), max_length=24, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(
        User, verbose_name=_("invited by"), on_delete=models.PROTECT, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, verbose_name=_("accepted by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.institution.code} ({self.role})"

    @staticmethod
    def new_token() -> tuple[str, str]:
        """A fresh (token, hash) pair; the token goes in the link only."""
        token = secrets.token_urlsafe(32)
        return token, _hash_token(token)

    @property
    def status(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    def get_status_display(self) -> str:
        return str(
            {
                "accepted": _("accepted"),
                "revoked": _("revoked"),
                "expired": _("expired"),
                "pending": _("pending"),
            }[self.status]
        )

    def is_usable(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


class LoginSession(models.Model):
    """Which session keys belong to which user, so access can be cut at once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"session of {self.user_id}"


# --- Personal access tokens (DICOMweb and API clients) --------------------------


class PersonalAccessToken(models.Model):
    """A bearer token a user made for a tool (a DICOMweb viewer, a script).

    Only the SHA-256 of the token is stored (tokens are 256 random bits, so a
    fast hash is enough); the token itself is shown once, when it is made. A
    token acts as its user, with the user's current roles: deactivating the
    user or their institutions cuts it off too.
    """

    PREFIX = "cnpat_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(_("name"), max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters, so a person can tell their tokens apart.
    hint = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("personal access token")
        verbose_name_plural = _("personal access tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def new_token(cls) -> tuple[str, str]:
        """A fresh (token, hash) pair."""
        token = cls.PREFIX + secrets.token_urlsafe(32)
        return token, _hash_token(token)

    @staticmethod
    def hash_of(token: str) -> str:
        return _hash_token(token)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- End of personal access tokens ----------------------------------------------
