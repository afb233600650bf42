from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "clinicnet.audit"
    label = "audit"
    verbose_name = _("Audit")

    def ready(self) -> None:
        from clinicnet.audit import signals  # noqa: F401  (connects receivers)
