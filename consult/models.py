"""Consultations (reading requests), their comments, reports and notifications.

A consultation asks another institution's readers to read one study. Its
status moves through a small machine (``consult.services``); every change is
a conditional UPDATE on (status, version), so two readers can never both
accept, and leaves a ``ConsultationTransition`` row and an audit event.

Reports are versioned: one draft at a time, signed versions are locked (the
model refuses to save or delete them) and carry a sha256 of their canonical
content, chained to the previous signed version.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from imaging.models import Instance, Series, Study, StudyGrant


class ConsultationQuerySet(models.QuerySet["Consultation"]):
    def active(self) -> ConsultationQuerySet:
        """Waiting for the readers: the due-time clock is running."""
        return self.filter(status__in=Consultation.ACTIVE_STATUSES)

    def overdue(self) -> ConsultationQuerySet:
        return self.active().filter(due_at__lt=timezone.now())


class Consultation(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("requested")
        ACCEPTED = "accepted", _("accepted")
        READING = "reading", _("reading")
        REPORTED = "reported", _("reported")
        CLOSED = "closed", _("closed")
        DECLINED = "declined", _("declined")
        CANCELLED = "cancelled", _("cancelled")

    # The priorities are the study's own: an emergency consultation raises the study's.
    Priority = Study.Priority

    # Waiting for the readers; may still be declined or cancelled.
    ACTIVE_STATUSES = (Status.REQUESTED, Status.ACCEPTED, Status.READING)
    # The target institution's readers hold a grant on the study.
    OPEN_STATUSES = (*ACTIVE_STATUSES, Status.REPORTED)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="consultations", verbose_name=_("study"))
    requesting_institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.PROTECT,
        related_name="consultations_requested",
        verbose_name=_("requesting institution"),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    target_institution = models.ForeignKey(
        "institutions.Institution",
        on_delete=models.PROTECT,
        related_name="consultations_received",
        verbose_name=_("reading institution"),
    )
    named_reader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested reader"),
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reader"),
    )
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Study.Priority.choices)
    clinical_question = models.TextField(_("clinical question"))
    clinical_history = models.TextField(_("clinical history"), blank=True)
    # The series the requester points the readers to (all of the study's by default).
    series = models.ManyToManyField(Series, related_name="+", blank=True, verbose_name=_("attached series"))
    # Other studies of the same patient the requester chose to share (priors).
    related_studies = models.ManyToManyField(Study, related_name="+", blank=True, verbose_name=_("prior studies"))
    # The grants this consultation holds (one per shared study); ended on close.
    grants = models.ManyToManyField(StudyGrant, related_name="+", blank=True)

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.REQUESTED)
    # Bumped by every transition; transitions are conditional on it.
    version = models.PositiveIntegerField(default=1)
    due_at = models.DateTimeField(_("due"))
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    reading_at = models.DateTimeField(_("reading since"), null=True, blank=True)
    reported_at = models.DateTimeField(_("reported at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    declined_at = models.DateTimeField(_("declined at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    decline_reason = models.TextField(_("reason for declining"), blank=True)
    cancel_reason = models.TextField(_("reason for cancelling"), blank=True)

    objects = ConsultationQuerySet.as_manager()

    class Meta:
        verbose_name = _("consultation")
        verbose_name_plural = _("consultations")
        indexes = [
            models.Index(fields=["target_institution", "status", "-priority", "created_at"]),
            models.Index(fields=["requesting_institution", "-created_at"]),
            models.Index(fields=["accepted_by", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.uuid} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_active and self.due_at < timezone.now()

    @property
    def is_emergency(self) -> bool:
        return self.priority >= Study.Priority.EMERGENCY

    def final_report(self) -> Report | None:
        """The latest signed version, or None."""
        return self.reports.filter(status=Report.Status.FINAL).order_by("-version").first()


class ConsultationTransition(models.Model):
    """One status change: who, when, from what to what, and why."""

    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=Consultation.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Consultation.Status.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.consultation_id}: {self.from_status} → {self.to_status}"


class Comment(models.Model):
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment {self.pk} on {self.consultation_id}"


class KeyImage(models.Model):
    """A frame of one of the consultation's instances, pointed at in a comment."""

    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="key_images")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    frame = models.PositiveIntegerField(default=0)  # 0-based, as imaging.storage.preview_key

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.instance_id}#{self.frame}"


class ReportLocked(Exception):
    """A signed report version cannot be changed or deleted."""


def _normalized(text: str) -> str:
    # Same text, same hash: Unicode NFC (Hangul may arrive decomposed) and \n line ends.
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


class Report(models.Model):
    class Kind(models.TextChoices):
        CHEST_RADIOGRAPH = "chest_radiograph", _("Chest radiograph")
        DENTAL_PANORAMIC = "dental_panoramic", _("Dental panoramic")
        CT = "ct", _("CT")
        MR = "mr", _("MR")
        GENERAL = "general", _("General")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        FINAL = "final", _("final")

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, related_name="reports")
    version = models.PositiveIntegerField(_("version"))
    kind = models.CharField(_("report template"), max_length=24, choices=Kind.choices, default=Kind.GENERAL)
    findings = models.TextField(_("findings"), blank=True)
    impression = models.TextField(_("impression"), blank=True)
    # What an addendum (a version after the first signed one) adds or corrects.
    addendum = models.TextField(_("addendum"), blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(_("saved at"), auto_now=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("signed by"),
    )
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    content_hash = models.CharField(_("content hash (sha256)"), max_length=64, blank=True)

    _locked = False

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        ordering = ["version"]
        constraints = [
            models.UniqueConstraint(fields=["consultation", "version"], name="report_version_unique"),
            models.UniqueConstraint(
                fields=["consultation"], condition=Q(status="draft"), name="report_one_draft_per_consultation"
            ),
        ]

    def __str__(self) -> str:
        return f"report v{self.version} of {self.consultation_id} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._locked:
            raise ReportLocked(f"report {self.pk} is signed and cannot change")
        super().save(*args, **kwargs)
        self._locked = self.status == self.Status.FINAL

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self._locked:
            raise ReportLocked(f"report {self.pk} is signed and cannot be deleted")
        return super().delete(*args, **kwargs)

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any, **kwargs: Any) -> Report:  # type: ignore[override]  # stubs differ by Django version
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._locked = instance.status == cls.Status.FINAL
        return instance

    @property
    def is_final(self) -> bool:
        return self.status == self.Status.FINAL

    @property
    def is_addendum(self) -> bool:
        return self.version > 1

    def canonical_content(self, previous_hash: str = "") -> bytes:
        """The bytes the content hash is taken of: sorted-key JSON, UTF-8, NFC text."""
        assert self.signed_by is not None and self.signed_at is not None
        data = {
            "consultation": str(self.consultation.uuid),
            "study": self.consultation.study.study_instance_uid,
            "version": self.version,
            "kind": self.kind,
            "findings": _normalized(self.findings),
            "impression": _normalized(self.impression),
            "addendum": _normalized(self.addendum),
            "signed_by": self.signed_by.get_username(),
            "signed_at": self.signed_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "previous": previous_hash,
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def compute_hash(self, previous_hash: str = "") -> str:
        return hashlib.sha256(self.canonical_content(previous_hash)).hexdigest()

    def previous_final(self) -> Report | None:
        return (
            Report.objects.filter(
                consultation_id=self.consultation_id, status=self.Status.FINAL, version__lt=self.version
            )
            .order_by("-version")
            .first()
        )

    def verify(self) -> bool:
        """Does the stored hash still match the stored content (and the chain before it)?"""
        if not self.is_final:
            return False
        previous = self.previous_final()
        return self.content_hash == self.compute_hash(previous.content_hash if previous else "")


class NotificationQuerySet(models.QuerySet["Notification"]):
    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """Something a person should know about a consultation; read or unread."""

    class Kind(models.TextChoices):
        NEW = "consultation.new", _("new reading request")
        ACCEPTED = "consultation.accepted", _("request accepted")
        DECLINED = "consultation.declined", _("request declined")
        CANCELLED = "consultation.cancelled", _("request cancelled")
        COMMENTED = "consultation.commented", _("new comment")
        REPORTED = "consultation.reported", _("report ready")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="notifications")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    is_emergency = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.kind} → {self.user_id}"
