"""Platform admin screens: consultations and reports are read-only here (changes go through the app)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from consult.models import Consultation, ConsultationTransition, Notification, Report


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TransitionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = ConsultationTransition
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "actor", "at", "note"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Consultation)
class ConsultationAdmin(_ReadOnly):
    list_display = [
        "uuid",
        "status",
        "priority",
        "requesting_institution",
        "target_institution",
        "created_at",
        "due_at",
    ]
    list_filter = ["status", "priority", "target_institution"]
    search_fields = ["uuid", "study__study_instance_uid", "requesting_institution__name_ko"]
    list_select_related = ["requesting_institution", "target_institution"]
    inlines = [TransitionInline]


@admin.register(Report)
class ReportAdmin(_ReadOnly):
    list_display = ["consultation", "version", "status", "signed_by", "signed_at", "content_hash"]
    list_filter = ["status", "kind"]
    list_select_related = ["consultation", "signed_by"]


@admin.register(Notification)
class NotificationAdmin(_ReadOnly):
    list_display = ["user", "kind", "consultation", "is_emergency", "created_at", "read_at"]
    list_filter = ["kind", "is_emergency"]
    list_select_related = ["user", "consultation"]
