"""Extra panels on a study's page, contributed by apps that build on imaging.

Imports point down (``consult`` uses ``imaging``, never the reverse), so the
study page cannot ask ``consult`` for its panel. Instead an app registers a
function in its ``AppConfig.ready()``; the page renders whatever is
registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from imaging.models import Study


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any]


PanelFunction = Callable[[HttpRequest, Study], Panel | None]
_registry: list[PanelFunction] = []


def register_study_panel(function: PanelFunction) -> PanelFunction:
    """Add a panel to every study page (usable as a decorator)."""
    if function not in _registry:
        _registry.append(function)
    return function


def study_panels(request: HttpRequest, study: Study) -> list[Panel]:
    panels = []
    for function in _registry:
        panel = function(request, study)
        if panel is not None:
            panels.append(panel)
    return panels
