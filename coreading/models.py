"""Co-reading rooms and what is kept of them: members, annotations, chat.

Only what must outlive a connection is here. The fast-changing state — the
sequence counter, presence, the leader, the replay log — lives in the shared
store (``coreading.store``), never in the database, so a viewport or pointer
message costs no query.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# Distinct on dark viewer backgrounds and for the common colour-vision deficiencies
# (a subset of Sasha Trubetskoy's 20 colours); a participant keeps theirs in a room.
PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#ffe119",
    "#4363d8",
    "#f58231",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#fabed4",
    "#dcbeff",
)


class Room(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    study = models.ForeignKey("imaging.Study", on_delete=models.PROTECT, related_name="+", verbose_name=_("study"))
    # Set for a consultation's room (one per consultation); empty for an ad-hoc room.
    consultation = models.OneToOneField(
        "consult.Consultation", null=True, blank=True, on_delete=models.PROTECT, related_name="coreading_room"
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The leader's last viewport, saved now and then: restores the view after the shared store is lost.
    viewport = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("co-reading room")
        verbose_name_plural = _("co-reading rooms")
        indexes = [models.Index(fields=["study", "closed_at"])]

    def __str__(self) -> str:
        return str(self.uuid)

    @property
    def kind(self) -> str:
        return "consultation" if self.consultation_id else "adhoc"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Participant(models.Model):
    """Someone in a room: invited to an ad-hoc room, or joined a consultation's room once."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    colour = models.CharField(max_length=7)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="coreading_participant_unique")]
        ordering = ["added_at", "id"]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}"


class Annotation(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="annotations")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    colour = models.CharField(max_length=7)
    kind = models.CharField(max_length=16)
    series_uid = models.CharField(max_length=64)
    instance_uid = models.CharField(max_length=64)
    frame = models.PositiveIntegerField(default=0)
    points = models.JSONField()
    text = models.CharField(max_length=200, blank=True)
    version = models.PositiveIntegerField(default=1)
    # The sender's message id: a resend of the same create is not stored twice.
    client_id = models.CharField(max_length=64)
    # The sequence number of the last change (seeds the counter after the store is lost).
    seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "author", "client_id"], name="coreading_annotation_once"),
        ]
        indexes = [models.Index(fields=["room", "created_at"], condition=Q(deleted_at__isnull=True), name="ann_live")]

    def __str__(self) -> str:
        return f"{self.kind} {self.uuid}"


class ChatMessage(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="chat_messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    colour = models.CharField(max_length=7)
    text = models.TextField()
    client_id = models.CharField(max_length=64)
    seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "author", "client_id"], name="coreading_chat_once")]
        indexes = [models.Index(fields=["room", "-id"])]

    def __str__(self) -> str:
        return f"chat {self.pk} in {self.room_id}"
