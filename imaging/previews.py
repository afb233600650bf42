"""Preview images for stored instances, series thumbnails, study status.

Run by the ``imaging.tasks.render_previews`` task. Work is claimed row by
row (``pending`` → ``rendering`` with a conditional UPDATE), so several
workers can share a study and a retried task never renders twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from clinicnet.events import push_to_institutions
from imaging import storage
from imaging.dicom.rendering import RenderError, encode_image, number_of_frames, read_dataset, render_frame
from imaging.models import Instance, Series, Study, StudyGrant

logger = logging.getLogger(__name__)
# Per-frame previews are made for at most this many frames of one instance;
# the viewer streams the real frames, previews are for lists and reports.
MAX_PREVIEW_FRAMES = 200


def _claim(instance_ids: Iterable[int]) -> list[Instance]:
    claimed = []
    for instance_id in instance_ids:
        updated = Instance.objects.filter(
            pk=instance_id, preview_status__in=[Instance.PreviewStatus.PENDING, Instance.PreviewStatus.RENDERING]
        ).update(preview_status=Instance.PreviewStatus.RENDERING)
        if updated:
            claimed.append(instance_id)
    return list(Instance.objects.filter(pk__in=claimed).select_related("study__institution", "series"))


def render_instance(instance: Instance) -> tuple[str, str]:
    """Render the previews of one instance; returns (status, error)."""
    try:
        with storage.local_path(instance.storage_key) as path:
            ds = read_dataset(path)
            frames = number_of_frames(ds)
            if frames == 0:
                return Instance.PreviewStatus.NONE, "no preview: the object has no pixel data"
            for frame_index in range(min(frames, MAX_PREVIEW_FRAMES)):
                image = render_frame(ds, frame_index, viewport=(settings.PREVIEW_SIZE, settings.PREVIEW_SIZE))
                storage.store_bytes(storage.preview_key(instance.storage_key, frame_index), encode_image(image))
    except RenderError as exc:
        if "no pixel data" in exc.reason:
            return Instance.PreviewStatus.NONE, f"no preview: {exc.reason}"
        return Instance.PreviewStatus.FAILED, f"no preview: {exc.reason}"[:300]
    except (OSError, ValueError) as exc:
        logger.warning("preview of %s failed: %s", instance.sop_instance_uid, exc)
        return Instance.PreviewStatus.FAILED, f"no preview: {exc}"[:300]
    return Instance.PreviewStatus.READY, ""


def render_series_thumbnail(series: Series) -> None:
    """The thumbnail is the middle image of the series among those with a preview."""
    candidates = list(
        series.instances.filter(preview_status=Instance.PreviewStatus.READY)
        .order_by("instance_number", "id")
        .values_list("storage_key", "number_of_frames")
    )
    if not candidates:
        return
    key, frames = candidates[len(candidates) // 2]
    try:
        with storage.local_path(key) as path:
            ds = read_dataset(path)
            image = render_frame(ds, max(frames, 1) // 2, viewport=(settings.THUMBNAIL_SIZE, settings.THUMBNAIL_SIZE))
    except (RenderError, OSError, ValueError) as exc:
        logger.warning("thumbnail of series %s failed: %s", series.series_instance_uid, exc)
        return
    thumb = storage.thumbnail_key(
        series.study.institution.code, series.study.study_instance_uid, series.series_instance_uid
    )
    storage.store_bytes(thumb, encode_image(image, quality=85))
    Series.objects.filter(pk=series.pk).update(thumbnail_key=thumb)


def refresh_study_status(study_id: int) -> str:
    """Set the study's status from its instances; tell every page that shows it.

    The study's row is locked before its instances are counted. Workers that
    finish instances of one study at the same moment then count one after the
    other, and the last count, which sees every instance finished before it,
    is the status that stays; counted first and saved later, an earlier
    worker's "pending" could land after the last one's "ready" and stay.
    """
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        counts = Instance.objects.filter(study_id=study_id).aggregate(
            waiting=Count(
                "id", filter=Q(preview_status__in=[Instance.PreviewStatus.PENDING, Instance.PreviewStatus.RENDERING])
            ),
            ready=Count("id", filter=Q(preview_status=Instance.PreviewStatus.READY)),
            failed=Count("id", filter=Q(preview_status=Instance.PreviewStatus.FAILED)),
        )
        if counts["waiting"]:
            status = Study.Status.PENDING
        elif counts["ready"] or not counts["failed"]:
            status = Study.Status.READY
        else:
            status = Study.Status.FAILED
        changed = study.status != status
        if changed:
            study.status = status
            study.save(update_fields=["status", "updated_at"])
        audience = {study.institution_id} | set(
            StudyGrant.objects.active().filter(study_id=study_id).values_list("institution_id", flat=True)
        )
        push_to_institutions(
            audience,
            {
                "type": "study.updated",
                "study": study.study_instance_uid,
                "status": status,
                "previews": counts["ready"],
                "failed": counts["failed"],
                "waiting": counts["waiting"],
            },
        )
    return status


def render_previews(instance_ids: list[int]) -> None:
    """Render what is still pending among *instance_ids*, then the thumbnails."""
    instances = _claim(instance_ids)
    for instance in instances:
        status, error = render_instance(instance)
        Instance.objects.filter(pk=instance.pk).update(preview_status=status, preview_error=error)
    for series in {instance.series_id: instance.series for instance in instances}.values():
        series.study = next(i.study for i in instances if i.series_id == series.pk)
        render_series_thumbnail(series)
    for study_id in {instance.study_id for instance in instances}:
        refresh_study_status(study_id)
