from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from clinicnet.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the trail can be searched and filtered, never edited."""

    list_display = ("at", "actor_label", "institution", "action", "object_type", "object_id", "client_address")
    list_filter = ("action", "institution", ("at", admin.DateFieldListFilter))
    search_fields = ("actor_label", "action", "object_type", "object_id", "client_address")
    date_hierarchy = "at"
    list_select_related = ("institution",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)
