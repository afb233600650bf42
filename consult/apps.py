from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.http import HttpRequest

    from imaging.models import Study


def _study_panel(request: HttpRequest, study: Study) -> Any:
    from consult.selectors import study_panel_context
    from imaging.panels import Panel

    return Panel("consult/includes/study_panel.html", study_panel_context(request.user, study)["consult_panel"])


class ConsultConfig(AppConfig):
    name = "consult"
    verbose_name = _("Consultations")

    def ready(self) -> None:
        # The study page renders the panels apps register (imaging cannot import consult).
        try:
            from imaging.panels import register_study_panel
        except ImportError:  # an imaging without a study page: nothing to add the panel to
            return
        register_study_panel(_study_panel)
