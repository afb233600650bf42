from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.http import HttpRequest

    from imaging.models import Study


def _study_panel(request: HttpRequest, study: Study) -> Any:
    from coreading.views import study_panel

    return study_panel(request, study)


class CoreadingConfig(AppConfig):
    name = "coreading"
    verbose_name = _("Co-reading")

    def ready(self) -> None:
        from coreading import signals  # noqa: F401  (connects the receivers)

        # "Read together" on the study page (imaging renders the panels apps register; it cannot import coreading).
        from imaging.panels import register_study_panel

        register_study_panel(_study_panel)
