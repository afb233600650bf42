"""Platform admin screens (Django admin, with search, filters and Korean labels)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from clinicnet.audit.services import audit_record
from institutions import services
from institutions.models import AETitle, Institution, Invitation, Membership, User


def _audit_membership(request: HttpRequest, membership: Membership, action: str) -> None:
    audit_record(
        action=action,
        request=request,
        institution=membership.institution,
        obj=membership,
        detail={
            "user": membership.user.username,
            "role": membership.role,
            "via": "admin",
            "active": membership.is_active,
        },
    )


class AuditedMembershipFormsetMixin:
    """Role changes made in admin inlines are audited like any other."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)  # type: ignore[misc]
            return
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            _audit_membership(request, obj, "membership.delete")
            obj.delete()
        for membership in instances:
            is_new = membership.pk is None
            membership.save()
            _audit_membership(request, membership, "membership.grant" if is_new else "membership.change")
        formset.save_m2m()


class AETitleInline(admin.TabularInline[AETitle, Institution]):
    model = AETitle
    extra = 0


class MembershipInline(admin.TabularInline[Membership, Any]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user", "institution"]
    readonly_fields = ["created_at"]


@admin.register(Institution)
class InstitutionAdmin(AuditedMembershipFormsetMixin, admin.ModelAdmin[Institution]):
    list_display = (
        "code",
        "name_ko",
        "name_en",
        "kind",
        "health_center",
        "is_active",
        "is_pilot",
        "accepts_consultations",
    )
    list_filter = ("kind", "is_active", "is_pilot", "accepts_consultations", "health_center")
    search_fields = ("code", "name_ko", "name_en", "address", "ae_titles__ae_title")
    list_select_related = ("health_center",)
    autocomplete_fields = ["health_center"]
    inlines = [AETitleInline, MembershipInline]
    actions = ["deactivate", "activate"]
    readonly_fields = ["is_active", "created_at", "updated_at"]

    @admin.action(description=_("Deactivate the selected institutions (members lose access at once)"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Institution]) -> None:
        for institution in queryset:
            services.institution_set_active(request=request, actor=request.user, institution=institution, active=False)  # type: ignore[arg-type]
        self.message_user(request, _("Deactivated."), messages.SUCCESS)

    @admin.action(description=_("Activate the selected institutions"))
    def activate(self, request: HttpRequest, queryset: QuerySet[Institution]) -> None:
        for institution in queryset:
            services.institution_set_active(request=request, actor=request.user, institution=institution, active=True)  # type: ignore[arg-type]
        self.message_user(request, _("Activated."), messages.SUCCESS)


@admin.register(User)
class UserAdmin(AuditedMembershipFormsetMixin, BaseUserAdmin):
    list_display = ("username", "name", "email", "is_active", "is_staff", "last_login")
    list_filter = ("is_active", "is_staff", "language", "memberships__institution__kind", "memberships__role")
    search_fields = ("username", "name", "email", "memberships__institution__name_ko", "memberships__institution__code")
    ordering = ("username",)
    inlines = [MembershipInline]
    actions = ["deactivate"]
    readonly_fields = ["is_active", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("name", "email", "language")}),
        (_("Permissions"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "email", "name", "password1", "password2")}),)

    @admin.action(description=_("Deactivate the selected accounts (their sessions end at once)"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            try:
                services.user_set_active(request=request, actor=request.user, user=user, active=False)  # type: ignore[arg-type]
            except Exception as error:  # noqa: BLE001  (shown to the admin, per account)
                self.message_user(request, f"{user}: {error}", messages.ERROR)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = (
        "email",
        "institution",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    )
    list_filter = ("role", "institution__kind")
    search_fields = ("email", "institution__name_ko", "institution__code")
    list_select_related = ("institution", "invited_by")
    readonly_fields = (
        "email",
        "institution",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Invitations are made on the institution's members page, which sends the link.
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "institution", "role", "is_active", "created_at")
    list_filter = ("role", "is_active", "institution__kind")
    search_fields = ("user__username", "user__name", "user__email", "institution__name_ko", "institution__code")
    list_select_related = ("user", "institution")
    autocomplete_fields = ["user", "institution"]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        _audit_membership(request, obj, "membership.change" if change else "membership.grant")

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        _audit_membership(request, obj, "membership.delete")
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset:
            self.delete_model(request, membership)
