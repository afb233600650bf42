"""Celery tasks of the archive: thin wrappers around ``imaging.previews``."""

from __future__ import annotations

from celery import shared_task

from clinicnet.tasks import enqueue
from imaging.models import Study

# Previews are rendered in chunks so that two workers share a large study.
CHUNK = 25


@shared_task(
    name="imaging.render_previews",
    acks_late=True,
    autoretry_for=(OSError,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def render_previews(instance_ids: list[int]) -> None:
    from imaging.previews import render_previews as render

    render([int(pk) for pk in instance_ids])


def schedule_previews(*, study_id: int, instance_ids: list[int], priority: int = Study.Priority.ROUTINE) -> None:
    """Queue preview rendering for freshly stored instances (after commit)."""
    queue = "emergency" if priority >= Study.Priority.EMERGENCY else "default"
    for start in range(0, len(instance_ids), CHUNK):
        enqueue(render_previews, instance_ids[start : start + CHUNK], queue=queue)
