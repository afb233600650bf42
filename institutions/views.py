from __future__ import annotations

from collections import OrderedDict
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clinicnet.audit.services import audit_record
from institutions import permissions, services
from institutions.csv_import import import_institutions_csv
from institutions.forms import AcceptInvitationForm, ImportForm, InviteForm, ProfileForm
from institutions.models import Institution, Invitation, Membership, User
from institutions.permissions import request_user


def _error_text(error: ValidationError | PermissionDenied) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or _("You are not allowed to do that.")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "institutions/home.html")


@require_POST
def language_switch(request: HttpRequest) -> HttpResponse:
    """Switch the interface language; saved on the account when signed in."""
    from django.conf import settings

    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        return HttpResponse(_("Unknown language."), status=400)
    if request.user.is_authenticated:
        User.objects.filter(pk=request.user.pk).update(language=language)
    target = request.POST.get("next") or reverse("home")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("home")
    response = HttpResponseRedirect(target)
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = ProfileForm(request.POST or None, instance=request_user(request))
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Your profile was saved."))
        return redirect("profile")
    from institutions.tokens import tokens_of  # personal access tokens section

    return render(
        request, "institutions/profile.html", {"form": form, "access_tokens": tokens_of(request_user(request))}
    )


# --- Members of one institution -------------------------------------------------


def _members_context(request: HttpRequest, institution: Institution, invite_form: InviteForm) -> dict[str, object]:
    memberships = (
        Membership.objects.filter(institution=institution)
        .select_related("user")
        .order_by("user__name", "user__username")
    )
    people: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for membership in memberships:
        entry = people.setdefault(membership.user_id, {"user": membership.user, "memberships": []})
        entry["memberships"].append(membership)
    return {
        "institution": institution,
        "people": list(people.values()),
        "invitations": institution.invitations.select_related("invited_by").order_by("-created_at")[:50],
        "invite_form": invite_form,
        "grantable_roles": permissions.grantable_roles(request.user, institution),
    }


@login_required
def institution_members(request: HttpRequest, code: str) -> HttpResponse:
    institution = permissions.institution_for_member_admin(request.user, code)
    roles = permissions.grantable_roles(request.user, institution)
    invite_form = InviteForm(request.POST or None, roles=roles)
    if request.method == "POST" and invite_form.is_valid():
        try:
            invitation, link = services.invitation_create(
                request=request,
                inviter=request_user(request),
                institution=institution,
                email=invite_form.cleaned_data["email"],
                role=invite_form.cleaned_data["role"],
            )
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, _error_text(error))
        else:
            messages.success(
                request,
                _("Invitation sent to %(email)s. The link, valid until %(expires)s, is: %(link)s")
                % {
                    "email": invitation.email,
                    "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M"),
                    "link": link,
                },
            )
            return redirect("institution-members", code=code)
    return render(request, "institutions/members.html", _members_context(request, institution, invite_form))


@login_required
@require_POST
def membership_toggle(request: HttpRequest, code: str, membership_id: int) -> HttpResponse:
    institution = permissions.institution_for_member_admin(request.user, code)
    membership = get_object_or_404(
        Membership.objects.select_related("user", "institution"), pk=membership_id, institution=institution
    )
    try:
        services.membership_set_active(
            request=request,
            actor=request_user(request),
            membership=membership,
            active=not membership.is_active,  # type: ignore[arg-type]
        )
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _error_text(error))
    return redirect("institution-members", code=code)


@login_required
@require_POST
def membership_add(request: HttpRequest, code: str, user_id: int) -> HttpResponse:
    institution = permissions.institution_for_member_admin(request.user, code)
    user = get_object_or_404(User, pk=user_id, memberships__institution=institution)
    try:
        services.membership_add_role(
            request=request,
            actor=request_user(request),
            institution=institution,
            user=user,
            role=request.POST.get("role", ""),  # type: ignore[arg-type]
        )
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _error_text(error))
    return redirect("institution-members", code=code)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, code: str, invitation_id: int) -> HttpResponse:
    institution = permissions.institution_for_member_admin(request.user, code)
    invitation = get_object_or_404(Invitation, pk=invitation_id, institution=institution)
    try:
        services.invitation_revoke(request=request, actor=request_user(request), invitation=invitation)
    except (ValidationError, PermissionDenied) as error:
        messages.error(request, _error_text(error))
    return redirect("institution-members", code=code)


# --- Accepting an invitation ---------------------------------------------------------


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = Invitation.objects.by_token(token)
    if invitation is None:
        return render(
            request,
            "institutions/invitation_invalid.html",
            {"reason": _("This invitation link is not valid.")},
            status=404,
        )
    if not invitation.is_usable():
        reasons = {
            "accepted": _("This invitation has already been used."),
            "revoked": _("This invitation was withdrawn. Ask for a new one."),
            "expired": _("This invitation has expired. Ask for a new one."),
        }
        return render(
            request, "institutions/invitation_invalid.html", {"reason": reasons[invitation.status]}, status=410
        )
    existing = User.objects.filter(email__iexact=invitation.email).exists()
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                user = services.invitation_accept(request=request, token=token, user=request_user(request))
            elif existing:
                raise ValidationError(_("An account with this e-mail address exists; sign in to accept."))
            elif form.is_valid():
                user = services.invitation_accept(
                    request=request,
                    token=token,
                    username=form.cleaned_data["username"],
                    name=form.cleaned_data["name"],
                    password=form.cleaned_data["password1"],
                )
                login(request, user, backend="institutions.backends.EmailOrUsernameBackend")
            else:
                user = None
        except ValidationError as error:
            messages.error(request, _error_text(error))
            user = None
        if user is not None:
            messages.success(
                request, _("Welcome to %(institution)s.") % {"institution": invitation.institution.display_name}
            )
            return redirect("home")
    return render(
        request,
        "institutions/invitation_accept.html",
        {"invitation": invitation, "form": form, "existing_account": existing, "token": token},
    )


# --- Platform admin: institutions -------------------------------------------------------


def _require_platform_admin(request: HttpRequest) -> None:
    if not permissions.can_manage_institutions(request.user):
        raise Http404("Not found")


@login_required
def institution_list(request: HttpRequest) -> HttpResponse:
    _require_platform_admin(request)
    institutions = Institution.objects.select_related("health_center").order_by("kind", "code")
    query = request.GET.get("q", "").strip()
    if query:
        institutions = institutions.filter(
            Q(code__icontains=query) | Q(name_ko__icontains=query) | Q(name_en__icontains=query)
        )
    kind = request.GET.get("kind", "")
    if kind in Institution.Kind.values:
        institutions = institutions.filter(kind=kind)
    return render(
        request,
        "institutions/institution_list.html",
        {"institutions": institutions[:500], "query": query, "kind": kind, "kinds": Institution.Kind.choices},
    )


@login_required
@require_POST
def institution_toggle(request: HttpRequest, code: str) -> HttpResponse:
    _require_platform_admin(request)
    institution = get_object_or_404(Institution, code=code)
    services.institution_set_active(
        request=request,
        actor=request_user(request),
        institution=institution,
        active=not institution.is_active,  # type: ignore[arg-type]
    )
    return redirect("institution-list")


@login_required
def institution_import(request: HttpRequest) -> HttpResponse:
    _require_platform_admin(request)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        report = import_institutions_csv(
            upload.read(), dry_run=form.cleaned_data["dry_run"], skip_invalid=form.cleaned_data["skip_invalid"]
        )
        audit_record(
            action="institutions.import",
            request=request,
            object_type="csv",
            object_id=upload.name[:128],
            detail={
                "dry_run": report.dry_run,
                "applied": report.applied,
                **report.summary(),
                "file_errors": report.file_errors,
            },
        )
    return render(request, "institutions/import.html", {"form": form, "report": report})
