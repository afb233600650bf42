from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from clinicnet.health import healthz
from clinicnet.views import favicon
from institutions.forms import LoginForm

admin.site.site_header = _("ClinicNet administration")
admin.site.site_title = _("ClinicNet admin")
admin.site.index_title = _("Platform administration")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("imaging.api_urls")),
    path("dicomweb/", include("imaging.dicomweb.urls")),
    path("", include("imaging.urls")),
    path("", include("consult.urls")),
    path("", include("coreading.urls")),
    path("", include("institutions.urls")),
]
