from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InstitutionsConfig(AppConfig):
    name = "institutions"
    verbose_name = _("Institutions and people")

    def ready(self) -> None:
        from institutions import signals  # noqa: F401  (connects receivers)
