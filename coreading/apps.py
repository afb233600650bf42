from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreadingConfig(AppConfig):
    name = "coreading"
    verbose_name = _("Co-reading")

    def ready(self) -> None:
        from coreading import signals  # noqa: F401  (connects the receivers)
