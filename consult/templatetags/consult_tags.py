"""``{% load consult_tags %}{% consult_study_panel study %}``: the study page's readings panel in one tag."""

from __future__ import annotations

from typing import Any

from django import template

from consult.selectors import study_panel_context

register = template.Library()


@register.inclusion_tag("consult/includes/study_panel.html", takes_context=True)
def consult_study_panel(context: template.Context, study: Any) -> dict[str, Any]:
    user = context["user"]
    return {"user": user, "request": context.get("request"), **study_panel_context(user, study)}
