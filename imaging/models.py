"""The DICOM archive index: patients, studies, series, instances, grants.

Everything is scoped to the institution that uploaded it. The same patient
ID at two clinics is two patients, and the same Study Instance UID uploaded
by two clinics is two studies: nothing one tenant does can reveal what
another tenant holds (no "already exists" answers across institutions).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Patient(models.Model):
    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.PROTECT, related_name="patients", verbose_name=_("institution")
    )
    issuer = models.CharField(_("issuer of patient ID"), max_length=64, blank=True)
    patient_id = models.CharField(_("patient ID"), max_length=64, blank=True)
    # The decoded name as DICOM writes it (family^given…, groups with "="),
    # and a folded form for case-insensitive prefix search.
    name = models.CharField(_("patient name"), max_length=400, blank=True)
    name_search = models.CharField(max_length=400, blank=True, db_index=True, editable=False)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "issuer", "patient_id"], name="patient_unique_per_institution"
            )
        ]
        indexes = [models.Index(fields=["institution", "patient_id"])]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.patient_id})"

    @property
    def display_name(self) -> str:
        from imaging.dicom.names import display_person_name

        return display_person_name(self.name)


class Study(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("previews pending")
        READY = "ready", _("ready")
        FAILED = "failed", _("no previews")

    class Priority(models.IntegerChoices):
        ROUTINE = 0, _("routine")
        URGENT = 1, _("urgent")
        EMERGENCY = 2, _("emergency")

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.PROTECT, related_name="studies", verbose_name=_("institution")
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies", verbose_name=_("patient"))
    study_instance_uid = models.CharField(_("Study Instance UID"), max_length=64)
    study_date = models.DateField(_("study date"), null=True, blank=True)
    study_time = models.CharField(_("study time"), max_length=32, blank=True)
    accession_number = models.CharField(_("accession number"), max_length=64, blank=True)
    study_id = models.CharField(_("study ID"), max_length=64, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    referring_physician_name = models.CharField(_("referring physician"), max_length=400, blank=True)
    # Backslash-separated, as DICOM's ModalitiesInStudy.
    modalities = models.CharField(_("modalities"), max_length=200, blank=True)
    number_of_series = models.PositiveIntegerField(_("series"), default=0)
    number_of_instances = models.PositiveIntegerField(_("instances"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    # Raised by consultations (emergency readings jump the preview queue).
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.ROUTINE)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("received"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        constraints = [
            models.UniqueConstraint(fields=["institution", "study_instance_uid"], name="study_unique_per_institution")
        ]
        indexes = [
            models.Index(fields=["study_instance_uid"]),
            models.Index(fields=["institution", "-study_date", "-id"]),
            models.Index(fields=["institution", "-created_at"]),
            models.Index(fields=["accession_number"]),
        ]

    def __str__(self) -> str:
        return f"{self.study_instance_uid} ({self.institution_id})"

    @property
    def modality_list(self) -> list[str]:
        return [m for m in self.modalities.split("\\") if m]


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series", verbose_name=_("study"))
    series_instance_uid = models.CharField(_("Series Instance UID"), max_length=64)
    modality = models.CharField(_("modality"), max_length=16, blank=True)
    series_number = models.IntegerField(_("series number"), null=True, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    body_part = models.CharField(_("body part"), max_length=64, blank=True)
    number_of_instances = models.PositiveIntegerField(_("instances"), default=0)
    # Storage key of the series thumbnail (JPEG), empty until rendered.
    thumbnail_key = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("series")
        verbose_name_plural = _("series")
        constraints = [models.UniqueConstraint(fields=["study", "series_instance_uid"], name="series_unique_per_study")]
        indexes = [models.Index(fields=["series_instance_uid"]), models.Index(fields=["modality", "study"])]
        ordering = ["series_number", "id"]

    def __str__(self) -> str:
        return self.series_instance_uid


class Instance(models.Model):
    class PreviewStatus(models.TextChoices):
        PENDING = "pending", _("pending")
        RENDERING = "rendering", _("rendering")
        READY = "ready", _("ready")
        NONE = "none", _("not an image")
        FAILED = "failed", _("failed")

    institution = models.ForeignKey("institutions.Institution", on_delete=models.PROTECT, related_name="+")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="instances")
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(_("SOP Instance UID"), max_length=64)
    sop_class_uid = models.CharField(_("SOP Class UID"), max_length=64)
    instance_number = models.IntegerField(_("instance number"), null=True, blank=True)
    transfer_syntax_uid = models.CharField(_("transfer syntax"), max_length=64, blank=True)
    storage_key = models.CharField(max_length=300, unique=True)
    size = models.BigIntegerField(_("size"))
    sha256 = models.CharField(max_length=64)
    number_of_frames = models.PositiveIntegerField(_("frames"), default=0)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    # DICOM JSON (PS3.18 F.2) of everything but bulk data, which is given as
    # BulkDataURI references, so metadata is served without reopening files.
    metadata = models.JSONField(default=dict)
    preview_status = models.CharField(max_length=16, choices=PreviewStatus.choices, default=PreviewStatus.PENDING)
    preview_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("instance")
        verbose_name_plural = _("instances")
        constraints = [
            models.UniqueConstraint(fields=["institution", "sop_instance_uid"], name="instance_unique_per_institution")
        ]
        indexes = [
            models.Index(fields=["sop_instance_uid"]),
            models.Index(fields=["series", "instance_number"]),
            models.Index(fields=["preview_status", "study"]),
        ]
        ordering = ["instance_number", "id"]

    def __str__(self) -> str:
        return self.sop_instance_uid


class IngestJournal(models.Model):
    """A series into which an association acknowledges instances before they are indexed.

    A C-STORE is answered once its instance's bytes are durable at their key;
    its index row follows a moment later, in a batch (``imaging.ingest``,
    "Acknowledged first, indexed next"). This row is written before the first
    such answer for the series and removed when the association's session
    closes with every instance indexed. One left behind (a crash in between)
    goes stale, and ``imaging.ingest.recover_acknowledged`` indexes the files
    of its series that have no row yet.
    """

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+")
    # Refreshed while the session acknowledges; untouched for long, the session is gone.
    touched_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["touched_at"])]

    def __str__(self) -> str:
        return f"series {self.series_id} (touched {self.touched_at:%Y-%m-%d %H:%M:%S})"


class StudyGrantQuerySet(models.QuerySet["StudyGrant"]):
    def active(self) -> StudyGrantQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class StudyGrant(models.Model):
    """The one way a study becomes visible outside the institution that owns it.

    Readers of ``institution`` may see ``study`` while the grant is active:
    not revoked, and not past ``expires_at`` (None: until revoked).
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="grants")
    institution = models.ForeignKey("institutions.Institution", on_delete=models.CASCADE, related_name="study_grants")
    reason = models.CharField(_("reason"), max_length=200)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = StudyGrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("study grant")
        verbose_name_plural = _("study grants")
        indexes = [models.Index(fields=["institution", "study"])]

    def __str__(self) -> str:
        return f"{self.study_id} → {self.institution_id}: {self.reason}"

    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
