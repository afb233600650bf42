"""Rendered resources and thumbnails (PS3.18 8.3.5, 10.4.1.1.4 and 10.4.1.1.5).

All pixels go through the one renderer, ``imaging.dicom.rendering``, so an
image looks the same here, in previews and in thumbnails. The JPEG previews
the preview task already stored (a series thumbnail, a preview per frame)
are served as they are, without decoding anything, when they are exactly
what was asked for: the same size, the file's own window, default quality.

Parameters: ``window=center,width[,linear|linear-exact|sigmoid]``,
``viewport=width,height`` (the rendered image fits inside, keeping its
aspect ratio), ``quality=1..100`` (JPEG). The media type comes from the
Accept header or the ``accept`` parameter: ``image/jpeg`` (default) or
``image/png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _

from imaging import storage
from imaging.access import StudyKey, access_study
from imaging.dicom.rendering import SUPPORTED_MEDIA_TYPES, RenderError, Window, encode_image, read_dataset, render_frame
from imaging.dicomweb import multipart
from imaging.dicomweb.common import (
    DicomwebError,
    audit_retrieve,
    bad_request,
    endpoint,
    etag_of,
    not_modified,
    set_validators,
)
from imaging.dicomweb.instances import StoredInstance
from imaging.dicomweb.negotiation import choose, request_accept
from imaging.dicomweb.wado import INSTANCE_FIELDS, instances_of, one_instance, parse_frame_list
from imaging.models import Instance, Series, Study

DEFAULT_QUALITY = 90


@dataclass(frozen=True)
class RenderOptions:
    media_type: str
    window: Window | None = None
    viewport: tuple[int, int] | None = None
    quality: int | None = None

    @property
    def plain(self) -> bool:
        """No window and default quality: what the stored previews were made with."""
        return self.media_type == "image/jpeg" and self.window is None and self.quality in (None, DEFAULT_QUALITY)


def parse_viewport(text: str) -> tuple[int, int]:
    parts = [part.strip() for part in text.split(",")]
    if len(parts) == 6 or len(parts) == 4:
        raise bad_request(_("viewport with a source region is not supported; give only width,height."))
    if len(parts) != 2:
        raise bad_request(_("viewport must be width,height, such as 512,512."))
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise bad_request(_("viewport must be two whole numbers, such as 512,512.")) from None
    if not (1 <= width <= 8192 and 1 <= height <= 8192):
        raise bad_request(_("viewport sizes must be from 1 to 8192."))
    return width, height


def options_from(
    request: HttpRequest,
    *,
    media_type: str | None = None,
    window: str | None = None,
    viewport: tuple[int, int] | None = None,
    quality: str | None = None,
) -> RenderOptions:
    """Parse the rendering parameters (PS3.18 names, or the WADO-URI ones passed in)."""
    media_type = media_type or choose(request_accept(request), SUPPORTED_MEDIA_TYPES, multipart=None)
    window = window if window is not None else request.GET.get("window")
    parsed_window = None
    if window:
        try:
            parsed_window = Window.parse(window)
        except ValueError as exc:
            raise bad_request(_("window: %(reason)s") % {"reason": exc}) from None
    if viewport is None and request.GET.get("viewport"):
        viewport = parse_viewport(request.GET["viewport"])
    quality = quality if quality is not None else request.GET.get("quality")
    parsed_quality = None
    if quality:
        try:
            parsed_quality = int(quality)
        except ValueError:
            raise bad_request(_("quality must be a whole number from 1 to 100.")) from None
        if not 1 <= parsed_quality <= 100:
            raise bad_request(_("quality must be a whole number from 1 to 100."))
    return RenderOptions(media_type, parsed_window, viewport, parsed_quality)


def _fit(size: tuple[int, int], viewport: tuple[int, int] | None) -> tuple[int, int]:
    """The size ``rendering`` gives a frame of *size* in *viewport* (the same arithmetic)."""
    if viewport is None:
        return size
    scale = min(viewport[0] / size[0], viewport[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _stored_preview(instance: StoredInstance, index: int, options: RenderOptions) -> str | None:
    """The key where a preview that is exactly the requested image is stored once the preview task has made it.

    Whether it is there is the file's own answer (it is written whole or not
    at all), so the instance's preview status need not be read on every request.
    """
    if not options.plain:
        return None
    if not instance.columns or not instance.rows:
        return None
    size = (instance.columns, instance.rows)
    from imaging.previews import MAX_PREVIEW_FRAMES

    if index >= MAX_PREVIEW_FRAMES:
        return None
    preview_size = _fit(size, (settings.PREVIEW_SIZE, settings.PREVIEW_SIZE))
    return storage.preview_key(instance.storage_key, index) if _fit(size, options.viewport) == preview_size else None


def render_instance_frame(instance: StoredInstance, index: int, options: RenderOptions) -> bytes:
    """One frame as JPEG or PNG: the stored preview when it fits and is there, else rendered now."""
    key = _stored_preview(instance, index, options)
    if key is not None:
        try:
            with storage.open_file(key) as handle:
                return handle.read()
        except OSError:
            pass  # not made (yet): rendered below
    try:
        with storage.local_path(instance.storage_key) as path:
            ds = read_dataset(path)
        image = render_frame(ds, index, window=options.window, viewport=options.viewport)
        return encode_image(image, options.media_type, quality=options.quality or DEFAULT_QUALITY)
    except RenderError as exc:
        raise DicomwebError(406 if "no pixel data" not in exc.reason else 404, exc.reason) from exc
    except ValueError as exc:
        raise bad_request(str(exc)) from exc


def _image_response(body: bytes, options: RenderOptions, etag: str, instance: StoredInstance) -> HttpResponse:
    response = HttpResponse(body, content_type=options.media_type)
    set_validators(response, etag, instance.created_at)
    return response


def _single(
    request: HttpRequest,
    study: Study | StudyKey,
    instance: StoredInstance,
    index: int,
    options: RenderOptions,
    resource: str,
) -> HttpResponse:
    if instance.number_of_frames == 0:
        raise DicomwebError(404, _("This instance has no pixel data, so it cannot be rendered."))
    if index >= instance.number_of_frames:
        raise DicomwebError(
            404,
            _("Frame %(frame)d does not exist: the instance has %(count)d frame(s).")
            % {"frame": index + 1, "count": instance.number_of_frames},
        )
    etag = etag_of(instance.sha256, index, options)
    cached = not_modified(request, etag, instance.created_at)
    if cached is not None:
        return cached
    audit_retrieve(
        request,
        study,
        resource,
        series=instance.series_instance_uid,
        instance=instance.sop_instance_uid,
        frame=str(index + 1),
    )
    return _image_response(render_instance_frame(instance, index, options), options, etag, instance)


def _multipart_rendered(
    request: HttpRequest, study: StudyKey, instances: list[Instance], options: RenderOptions, resource: str
) -> HttpResponseBase:
    """Study and series /rendered: the first frame of every image instance, one part each."""
    images = [StoredInstance.of(instance) for instance in instances if instance.number_of_frames]
    if not images:
        raise DicomwebError(404, _("Nothing here has pixel data to render."))
    etag = etag_of("rendered", options, *(instance.sha256 for instance in images))
    last_modified = max(instance.created_at for instance in images)
    cached = not_modified(request, etag, last_modified)
    if cached is not None:
        return cached
    audit_retrieve(request, study, resource, series=images[0].series_instance_uid if resource != "study" else "")
    boundary = multipart.new_boundary()

    def parts() -> Iterator[bytes]:
        for instance in images:
            try:
                body = render_instance_frame(instance, 0, options)
            except DicomwebError:
                continue  # an instance that cannot be rendered is left out of the set
            yield multipart.part_header(boundary, options.media_type)
            yield body
            yield multipart.part_end()
        yield multipart.closing(boundary)

    response = StreamingHttpResponse(parts(), content_type=multipart.content_type(options.media_type, boundary))
    set_validators(response, etag, last_modified)
    return response


@endpoint("GET")
def study_rendered(request: HttpRequest, study_uid: str) -> HttpResponseBase:
    options = options_from(request)
    study, instances = instances_of(request, study_uid)
    return _multipart_rendered(request, study, instances, options, "rendered")


@endpoint("GET")
def series_rendered(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponseBase:
    options = options_from(request)
    study, instances = instances_of(request, study_uid, series_uid)
    return _multipart_rendered(request, study, instances, options, "rendered")


@endpoint("GET")
def instance_rendered(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
    options = options_from(request)
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    return _single(request, study, instance, 0, options, "rendered")


@endpoint("GET")
def frame_rendered(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frames: str) -> HttpResponse:
    numbers = parse_frame_list(frames)
    if len(numbers) != 1:
        raise bad_request(_("A rendered frame is one frame: ask for each frame separately."))
    options = options_from(request)
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    return _single(request, study, instance, numbers[0] - 1, options, "rendered")


# --- thumbnails ----------------------------------------------------------------------------------


def _thumbnail_options(request: HttpRequest) -> RenderOptions:
    options = options_from(request)
    if options.viewport is None:
        size = settings.THUMBNAIL_SIZE
        options = RenderOptions(options.media_type, options.window, (size, size), options.quality)
    return options


def _series_thumbnail(request: HttpRequest, study: Study, series: Series, options: RenderOptions) -> HttpResponse:
    size = settings.THUMBNAIL_SIZE
    if series.thumbnail_key and options.plain and options.viewport == (size, size):
        etag = etag_of("thumbnail", series.thumbnail_key)
        cached = not_modified(request, etag, None)
        if cached is not None:
            return cached
        try:
            with storage.open_file(series.thumbnail_key) as handle:
                body = handle.read()
        except OSError:
            body = b""
        if body:
            audit_retrieve(request, study, "thumbnail", series=series.series_instance_uid)
            response = HttpResponse(body, content_type="image/jpeg")
            set_validators(response, etag, None)
            return response
    images = list(
        Instance.objects.filter(series=series, number_of_frames__gt=0)
        .select_related("series")
        .only(*INSTANCE_FIELDS)
        .order_by("instance_number", "id")
    )
    if not images:
        raise DicomwebError(404, _("This series has no images to make a thumbnail of."))
    middle = StoredInstance.of(images[len(images) // 2])
    return _single(request, study, middle, max(middle.number_of_frames, 1) // 2, options, "thumbnail")


@endpoint("GET")
def study_thumbnail(request: HttpRequest, study_uid: str) -> HttpResponse:
    options = _thumbnail_options(request)
    study = access_study(request.user, study_uid)
    series = Series.objects.filter(study=study, number_of_instances__gt=0).order_by("series_number", "id")
    for candidate in series:
        if candidate.instances.filter(number_of_frames__gt=0).exists():
            return _series_thumbnail(request, study, candidate, options)
    raise DicomwebError(404, _("This study has no images to make a thumbnail of."))


@endpoint("GET")
def series_thumbnail(request: HttpRequest, study_uid: str, series_uid: str) -> HttpResponse:
    options = _thumbnail_options(request)
    study = access_study(request.user, study_uid)
    series = Series.objects.filter(study=study, series_instance_uid=series_uid).first()
    if series is None:
        raise Http404("No such series")
    return _series_thumbnail(request, study, series, options)


@endpoint("GET")
def instance_thumbnail(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
    options = _thumbnail_options(request)
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    return _single(request, study, instance, max(instance.number_of_frames, 1) // 2, options, "thumbnail")


@endpoint("GET")
def frame_thumbnail(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str, frames: str) -> HttpResponse:
    numbers = parse_frame_list(frames)
    options = _thumbnail_options(request)
    study, instance = one_instance(request, study_uid, series_uid, sop_uid)
    return _single(request, study, instance, numbers[0] - 1, options, "thumbnail")
