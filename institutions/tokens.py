"""Personal access tokens: making, revoking and checking them.

External tools (a separately hosted viewer such as OHIF, a DICOMweb script)
cannot use the session cookie; they send ``Authorization: Bearer <token>``.
A user makes tokens on their profile page, sees each one once, and revokes
them there. Every request with a token acts as the token's user with the
user's roles *now*, so deactivating a user or a membership cuts the token's
access on the next request.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from clinicnet.audit.services import audit_record
from clinicnet.lib.sql import aware_datetime
from institutions import permissions
from institutions.forms import ProfileForm
from institutions.models import PersonalAccessToken, User

# last_used_at is written at most this often per token, so a viewer fetching
# hundreds of frames does not write a row per frame.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_ACTIVE_TOKENS = 20


# --- services ---------------------------------------------------------------------


def token_create(*, user: User, name: str, request: HttpRequest | None = None) -> tuple[PersonalAccessToken, str]:
    """Make a token for *user*; returns the row and the token (shown once, never stored)."""
    name = name.strip()
    if not name:
        raise ValidationError(_("Give the token a name, such as the tool that will use it."))
    if PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_ACTIVE_TOKENS:
        raise ValidationError(
            _("You already have %(count)d active tokens; revoke one you no longer use first.")
            % {"count": MAX_ACTIVE_TOKENS}
        )
    raw, token_hash = PersonalAccessToken.new_token()
    token = PersonalAccessToken(user=user, name=name[:100], token_hash=token_hash, hint=raw[:12])
    token.full_clean()
    token.save()
    audit_record(action="token.create", request=request, actor=user, obj=token, detail={"name": token.name})
    return token, raw


def token_revoke(*, user: User, token_id: int, request: HttpRequest | None = None) -> PersonalAccessToken:
    """Revoke one of *user*'s tokens (Http404 for someone else's)."""
    token = PersonalAccessToken.objects.filter(pk=token_id, user=user).first()
    if token is None:
        raise Http404("No such token")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action="token.revoke", request=request, actor=user, obj=token, detail={"name": token.name})
    return token


_ACCOUNT_BY_HASH = """
    SELECT u.*, t.id AS token_id, t.last_used_at AS token_last_used_at
    FROM institutions_user u JOIN institutions_personalaccesstoken t ON t.user_id = u.id
    WHERE t.token_hash = %s AND t.revoked_at IS NULL
"""


def user_for_token(raw: str) -> User | None:
    """The active user a token acts for, or None (unknown, revoked, inactive user)."""
    raw = raw.strip()
    if not raw.startswith(PersonalAccessToken.PREFIX) or len(raw) > 200:
        return None
    # One plain query: every DICOMweb request of a tool (each frame) comes here, and the ORM's
    # building and compiling of the same query took longer than the database's answer.
    found = list(User.objects.raw(_ACCOUNT_BY_HASH, [PersonalAccessToken.hash_of(raw)]))
    if not found or not found[0].is_active:
        return None
    user = found[0]
    last_used = user.token_last_used_at  # type: ignore[attr-defined]  # selected above
    now = timezone.now()
    if last_used is None or now - aware_datetime(last_used) > LAST_USED_PRECISION:
        PersonalAccessToken.objects.filter(pk=user.token_id).update(last_used_at=now)  # type: ignore[attr-defined]
    return user


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None when there is none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class PersonalAccessTokenAuthentication(authentication.BaseAuthentication):
    """DRF authentication with ``Authorization: Bearer <personal access token>``.

    Token requests carry no cookie, so they are exempt from CSRF checks.
    """

    def authenticate(self, request: Request) -> tuple[User, None] | None:
        raw = bearer_token(request._request)
        if raw is None:
            return None
        user = user_for_token(raw)
        if user is None or not permissions.has_any_access(user):
            raise exceptions.AuthenticationFailed(_("The access token is unknown or revoked."))
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="clinicnet"'


# --- profile page views ---------------------------------------------------------------


def tokens_of(user: User) -> list[PersonalAccessToken]:
    return list(PersonalAccessToken.objects.filter(user=user).order_by("revoked_at", "-created_at")[:50])


@login_required
@require_POST
def token_create_view(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]  # login_required
    new_token = ""
    error = ""
    try:
        _token, new_token = token_create(user=user, name=request.POST.get("name", ""), request=request)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    # Rendered, not redirected: the token is shown in this one response only.
    response = render(
        request,
        "institutions/profile.html",
        {
            "form": ProfileForm(instance=user),
            "access_tokens": tokens_of(user),
            "new_access_token": new_token,
            "access_token_error": error,
        },
        status=400 if error else 200,
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    token_revoke(user=request.user, token_id=token_id, request=request)  # type: ignore[arg-type]
    return redirect("profile")
