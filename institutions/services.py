"""Writes to the institutions app: invitations, memberships, deactivation.

Every function checks permission through ``institutions.permissions`` and
records an audit event, so views and commands stay thin.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from clinicnet.audit.services import audit_record
from clinicnet.events import access_changed
from institutions import permissions
from institutions.models import Institution, Invitation, LoginSession, Membership, Role, User


def sessions_revoke(*, user_ids: list[int]) -> int:
    """End every session of these users now; returns how many ended."""
    keys = list(LoginSession.objects.filter(user_id__in=user_ids).values_list("session_key", flat=True))
    deleted, _detail = Session.objects.filter(session_key__in=keys).delete()
    LoginSession.objects.filter(user_id__in=user_ids).delete()
    transaction.on_commit(lambda: access_changed(user_ids))
    return deleted


# --- Invitations -----------------------------------------------------------


def invitation_create(
    *, request: HttpRequest | None, inviter: User, institution: Institution, email: str, role: str
) -> tuple[Invitation, str]:
    """Invite *email* to *institution* with *role*; returns the invitation and its link.

    The link is also e-mailed. It is shown once to the inviter too, because a
    pilot clinic often has no working mail set-up on day one.
    """
    if role not in permissions.grantable_roles(inviter, institution):
        raise PermissionDenied(_("You may not invite people to this institution with that role."))
    if not institution.is_active:
        raise ValidationError(_("This institution is deactivated; activate it before inviting people."))
    email = email.strip().lower()
    existing = User.objects.filter(email__iexact=email).first()
    if (
        existing is not None
        and Membership.objects.filter(user=existing, institution=institution, role=role, is_active=True).exists()
    ):
        raise ValidationError(_("%(email)s already has this role at this institution.") % {"email": email})
    token, token_hash = Invitation.new_token()
    with transaction.atomic():
        # A fresh invitation replaces any pending one for the same person and role.
        Invitation.objects.pending().filter(email__iexact=email, institution=institution, role=role).update(
            revoked_at=timezone.now()
        )
        invitation = Invitation(
            email=email,
            institution=institution,
            role=role,
            token_hash=token_hash,
            invited_by=inviter,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALID_DAYS),
        )
        invitation.full_clean()
        invitation.save()
        audit_record(
            action="invitation.create",
            request=request,
            actor=inviter,
            institution=institution,
            obj=invitation,
            detail={"email": email, "role": role},
        )
    link = f"{settings.SITE_URL}{reverse('invitation-accept', args=[token])}"
    language = existing.language if existing else "ko"
    with translation.override(language):
        subject = _("Invitation to ClinicNet: %(institution)s") % {"institution": institution.name_ko}
        body = _(
            "%(inviter)s invited you to join %(institution)s on ClinicNet as %(role)s.\n\n"
            "Open this link within %(days)d days to accept:\n%(link)s\n"
        ) % {
            "inviter": inviter.get_full_name(),
            "institution": institution.name_ko,
            "role": Role(role).label,
            "days": settings.INVITATION_VALID_DAYS,
            "link": link,
        }
    transaction.on_commit(lambda: send_mail(subject, body, None, [email], fail_silently=True))
    return invitation, link


def invitation_revoke(*, request: HttpRequest | None, actor: User, invitation: Invitation) -> None:
    if not permissions.can_manage_members(actor, invitation.institution):
        raise PermissionDenied(_("You may not manage this institution's invitations."))
    if not invitation.is_usable():
        raise ValidationError(_("This invitation is no longer pending."))
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        action="invitation.revoke", request=request, actor=actor, institution=invitation.institution, obj=invitation
    )


def invitation_accept(
    *,
    request: HttpRequest | None,
    token: str,
    user: User | None = None,
    username: str = "",
    name: str = "",
    password: str = "",
) -> User:
    """Use an invitation: either as the signed-in *user* or by creating an account.

    The invitation row is locked, so two clicks on the same link cannot both
    succeed.
    """
    with transaction.atomic():
        found = Invitation.objects.by_token(token)
        if found is None:
            raise ValidationError(_("This invitation link is not valid."))
        invitation = Invitation.objects.select_for_update().select_related("institution").get(pk=found.pk)
        if invitation.accepted_at is not None:
            raise ValidationError(_("This invitation has already been used."))
        if invitation.revoked_at is not None:
            raise ValidationError(_("This invitation was withdrawn. Ask for a new one."))
        if invitation.expires_at <= timezone.now():
            raise ValidationError(_("This invitation has expired. Ask for a new one."))
        if not invitation.institution.is_active:
            raise ValidationError(_("The institution is deactivated."))
        if user is None:
            if User.objects.filter(email__iexact=invitation.email).exists():
                raise ValidationError(_("An account with this e-mail address exists; sign in to accept."))
            user = User(username=username, name=name, email=invitation.email)
            user.set_password(password)
            user.full_clean()
            user.save()
            audit_record(
                action="user.create", request=request, actor=user, obj=user, institution=invitation.institution
            )
        elif user.email.lower() != invitation.email.lower():
            raise ValidationError(
                _("This invitation is for %(email)s; sign in with that account to accept it.")
                % {"email": invitation.email}
            )
        membership, _created = Membership.objects.get_or_create(
            user=user, institution=invitation.institution, role=invitation.role
        )
        if not membership.is_active:
            membership.is_active = True
            membership.save(update_fields=["is_active"])
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            action="invitation.accept",
            request=request,
            actor=user,
            institution=invitation.institution,
            obj=invitation,
            detail={"role": invitation.role},
        )
        audit_record(
            action="membership.grant",
            request=request,
            actor=user,
            institution=invitation.institution,
            obj=membership,
            detail={"user": user.username, "role": invitation.role, "via": "invitation"},
        )
    return user


# --- Memberships and deactivation ----------------------------------------------


def membership_set_active(*, request: HttpRequest | None, actor: User, membership: Membership, active: bool) -> None:
    """Switch one role of one person on or off (a role change)."""
    if not permissions.can_manage_members(actor, membership.institution):
        raise PermissionDenied(_("You may not manage this institution's members."))
    if membership.user_id == actor.pk and not active and membership.role == Role.INSTITUTION_ADMIN:
        raise ValidationError(_("You cannot remove your own admin role; ask another admin."))
    if membership.is_active == active:
        return
    membership.is_active = active
    membership.save(update_fields=["is_active"])
    audit_record(
        action="membership.grant" if active else "membership.revoke",
        request=request,
        actor=actor,
        institution=membership.institution,
        obj=membership,
        detail={"user": membership.user.username, "role": membership.role},
    )
    if not active and not permissions.has_any_access(membership.user):
        sessions_revoke(user_ids=[membership.user_id])
    else:
        transaction.on_commit(lambda: access_changed([membership.user_id]))


def membership_add_role(
    *, request: HttpRequest | None, actor: User, institution: Institution, user: User, role: str
) -> Membership:
    if role not in permissions.grantable_roles(actor, institution):
        raise PermissionDenied(_("You may not give that role at this institution."))
    if not Membership.objects.filter(user=user, institution=institution).exists():
        # Adding people goes through invitations; this only adds roles to members.
        raise ValidationError(_("%(user)s is not a member of this institution; invite them instead.") % {"user": user})
    membership, created = Membership.objects.get_or_create(user=user, institution=institution, role=role)
    if created:
        audit_record(
            action="membership.grant",
            request=request,
            actor=actor,
            institution=institution,
            obj=membership,
            detail={"user": user.username, "role": role},
        )
    elif not membership.is_active:
        membership_set_active(request=request, actor=actor, membership=membership, active=True)
    return membership


def user_set_active(*, request: HttpRequest | None, actor: User, user: User, active: bool) -> None:
    """Activate or deactivate a whole account (platform admins only)."""
    if not permissions.is_platform_admin(actor):
        raise PermissionDenied(_("Only platform admins can deactivate accounts."))
    if user.pk == actor.pk:
        raise ValidationError(_("You cannot deactivate your own account."))
    if user.is_active == active:
        return
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit_record(action="user.activate" if active else "user.deactivate", request=request, actor=actor, obj=user)
    if not active:
        sessions_revoke(user_ids=[user.pk])


def institution_set_active(*, request: HttpRequest | None, actor: User, institution: Institution, active: bool) -> None:
    """Activate or deactivate an institution; its members lose access at once."""
    if not permissions.can_manage_institutions(actor):
        raise PermissionDenied(_("Only platform admins manage institutions."))
    if institution.is_active == active:
        return
    institution.is_active = active
    institution.save(update_fields=["is_active", "updated_at"])
    audit_record(
        action="institution.activate" if active else "institution.deactivate",
        request=request,
        actor=actor,
        institution=institution,
        obj=institution,
    )
    if not active:
        member_ids = list(
            Membership.objects.filter(institution=institution).values_list("user_id", flat=True).distinct()
        )
        locked_out = [
            user.pk for user in User.objects.filter(pk__in=member_ids) if not permissions.has_any_access(user)
        ]
        sessions_revoke(user_ids=locked_out)
        transaction.on_commit(lambda: access_changed(member_ids))
