from __future__ import annotations

from django.urls import path

from institutions import tokens, views

urlpatterns = [
    path("", views.home, name="home"),
    path("language/", views.language_switch, name="language-switch"),
    path("profile/", views.profile, name="profile"),
    path("profile/tokens/", tokens.token_create_view, name="access-token-create"),
    path("profile/tokens/<int:token_id>/revoke/", tokens.token_revoke_view, name="access-token-revoke"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("institutions/<str:code>/members/", views.institution_members, name="institution-members"),
    path(
        "institutions/<str:code>/members/<int:membership_id>/toggle/",
        views.membership_toggle,
        name="membership-toggle",
    ),
    path("institutions/<str:code>/people/<int:user_id>/roles/", views.membership_add, name="membership-add"),
    path(
        "institutions/<str:code>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("platform/institutions/", views.institution_list, name="institution-list"),
    path("platform/institutions/import/", views.institution_import, name="institution-import"),
    path("platform/institutions/<str:code>/toggle/", views.institution_toggle, name="institution-toggle"),
]
