"""QIDO-RS (PS3.18 10.6): search for studies, series and instances.

Answers come from the index columns (Patient, Study, Series, Instance), not
from files: a study search is one SQL query with the patient joined, the
series and instance counts read from the denormalised columns. Attributes
beyond the index (``includefield``) come from the stored DICOM JSON of one
representative instance per row, fetched in one more query for the whole
page. Everything is scoped by ``imaging.access.visible_studies``.

Matching (PS3.4 C.2.2.2 as PS3.18 8.3.4 applies it):

* single value, wildcards ``*`` and ``?``; PN matching is case-insensitive
  and accent/width-folded, and matches any of the three component groups
  (Alphabetic, Ideographic, Phonetic), so ``홍*`` finds
  ``Hong^Gildong=洪^吉洞=홍^길동``; other text matches case-insensitively
  (AccessionNumber, PatientID, StudyID and UIDs match exactly);
* UID lists (``StudyInstanceUID=1.2,1.3`` or backslash-separated);
* date and time ranges (``20240101-20241231``, ``-20240630``, ``20240101-``);
* ``fuzzymatching=true``: a PN matches when any name component starts with
  the value (``gil`` finds ``Hong^Gildong``).

Attributes the index cannot match on are ignored and named in a ``Warning``
header, as PS3.18 asks; names that are not DICOM attributes answer 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from django.conf import settings
from django.db.models import Min, Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from clinicnet.audit.services import audit_record
from imaging.access import access_study, visible_studies
from imaging.dicom.names import fold_for_search
from imaging.dicomweb import json_model
from imaging.dicomweb.common import bad_request, endpoint, json_response
from imaging.dicomweb.json_model import UnknownAttribute, da, tag_of
from imaging.dicomweb.negotiation import request_accept, wants_json
from imaging.dicomweb.urls_util import service_root
from imaging.models import Instance, Patient, Series, Study

CONTROL_PARAMETERS = {"limit", "offset", "includefield", "fuzzymatching", "accept", "charset"}
WARNING_PREFIX = "299 clinicnet-dicomweb:"
# Up to this many patients matching a PatientName are looked up by id (see _patient_name).
MAX_PATIENT_IDS = 2000

# --- default attributes (PS3.18 Tables 10.6.3-3 to -5) ----------------------------------

STUDY_DEFAULTS = {
    "00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090", "00081030",
    "00081190", "00100010", "00100020", "00100030", "00100040", "0020000D", "00200010", "00201206",
    "00201208",
}  # fmt: skip
SERIES_DEFAULTS = {"00080005", "00080056", "00080060", "0008103E", "00081190", "00180015", "0020000D",
                   "0020000E", "00200011", "00201209"}  # fmt: skip
INSTANCE_DEFAULTS = {"00080005", "00080016", "00080018", "00080056", "00081190", "0020000D", "0020000E",
                     "00200013", "00280008", "00280010", "00280011"}  # fmt: skip
# Further study- and series-level attributes ``includefield=all`` adds from the stored headers.
STUDY_EXTRA = {"00080080", "00081032", "00081060", "00101010", "00101020", "00101030", "00102160", "00104000",
               "00321032", "00321060", "00080021"}  # fmt: skip
SERIES_EXTRA = {"00080021", "00080031", "00080070", "00081010", "00081090", "00180050", "00185100", "00200052",
                "00200060", "00400244", "00400245", "00400254", "00280004", "00280010", "00280011",
                "00280100"}  # fmt: skip


class Level:
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


# --- matching ---------------------------------------------------------------------------------


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _wildcard_regex(value: str, any_char: str = ".") -> str:
    """``*`` and ``?`` as regular expression, everything else literal."""
    out = []
    for char in value:
        if char == "*":
            out.append(f"{any_char}*")
        elif char == "?":
            out.append(any_char)
        else:
            out.append(re.escape(char))
    return "".join(out)


def _text(field: str, *, exact_case: bool = False) -> Callable[[str, bool], Q]:
    def match(value: str, fuzzy: bool) -> Q:
        if not _has_wildcard(value):
            return Q(**{field: value}) if exact_case else Q(**{f"{field}__iexact": value})
        if value.endswith("*") and not _has_wildcard(value[:-1]):
            lookup = "startswith" if exact_case else "istartswith"
            return Q(**{f"{field}__{lookup}": value[:-1]})
        lookup = "regex" if exact_case else "iregex"
        return Q(**{f"{field}__{lookup}": f"^{_wildcard_regex(value)}$"})

    return match


def _pn_regex(text: str, fuzzy: bool) -> str | None:
    """The regular expression of a PN match on one component group; None matches everything."""
    if fuzzy:
        # Any name component (after ^, =, a space or at the start) begins with the value.
        return r"(^|[\^= ])" + _wildcard_regex(text.rstrip("*"), "[^=]")
    if text == "*":
        return None
    return "(^|=)" + _wildcard_regex(text, "[^=]") + "(=|$)"


def _person_name(field: str) -> Callable[[str, bool], Q]:
    """PN matching on one of the three component groups (separated by ``=``), case-insensitive."""

    def match(value: str, fuzzy: bool) -> Q:
        pattern = _pn_regex(value, fuzzy)
        return Q(**{f"{field}__iregex": pattern}) if pattern else Q()

    return match


def _patient_name(patient_ref: str) -> Callable[[str, bool], Q]:
    """PatientName, matched on the folded Patient.name_search.

    The matching patients are looked up first, on their own: that query uses
    the name indexes (a trigram index on PostgreSQL), while the same condition
    inside the study search makes the planner scan the patient table. When a
    name is too common for a list of ids to pay, the condition goes into the
    study search, where walking studies newest first finds matches soon.
    """

    def match(value: str, fuzzy: bool) -> Q:
        pattern = _pn_regex(fold_for_search(value), fuzzy)
        if pattern is None:
            return Q()
        ids = list(
            Patient.objects.filter(name_search__regex=pattern).values_list("id", flat=True)[: MAX_PATIENT_IDS + 1]
        )
        if len(ids) > MAX_PATIENT_IDS:
            return Q(**{f"{patient_ref}__name_search__regex": pattern})
        return Q(**{f"{patient_ref}_id__in": ids})

    return match


def _uids(field: str) -> Callable[[str, bool], Q]:
    def match(value: str, fuzzy: bool) -> Q:
        uids = [uid.strip() for uid in re.split(r"[,\\]", value) if uid.strip()]
        if not uids:
            return Q()
        return Q(**{field: uids[0]}) if len(uids) == 1 else Q(**{f"{field}__in": uids})

    return match


def _parse_date(text: str) -> date:
    digits = text.replace(".", "").strip()
    if not re.fullmatch(r"\d{8}", digits):
        raise bad_request(_("%(value)s is not a DICOM date (YYYYMMDD).") % {"value": text})
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise bad_request(_("%(value)s is not a valid date.") % {"value": text}) from None


def _date(field: str) -> Callable[[str, bool], Q]:
    def match(value: str, fuzzy: bool) -> Q:
        if "-" not in value:
            return Q(**{field: _parse_date(value)})
        low, _sep, high = value.partition("-")
        query = Q()
        if low.strip():
            query &= Q(**{f"{field}__gte": _parse_date(low)})
        if high.strip():
            query &= Q(**{f"{field}__lte": _parse_date(high)})
        if not query:
            raise bad_request(_("A date range needs at least one end: %(value)s") % {"value": value})
        return query

    return match


def _time(field: str) -> Callable[[str, bool], Q]:
    def clean(text: str) -> str:
        text = text.replace(":", "").strip()
        if not re.fullmatch(r"\d{2,6}(\.\d{1,6})?", text):
            raise bad_request(_("%(value)s is not a DICOM time (HHMMSS).") % {"value": text})
        return text

    def match(value: str, fuzzy: bool) -> Q:
        if "-" not in value:
            return Q(**{f"{field}__startswith": clean(value)})
        low, _sep, high = value.partition("-")
        query = Q()
        if low.strip():
            query &= Q(**{f"{field}__gte": clean(low)})
        if high.strip():
            # "-1200" includes 120000.5: compare against the end of that second.
            query &= Q(**{f"{field}__lte": clean(high) + "\uffff"})
        return query

    return match


def _integer(field: str) -> Callable[[str, bool], Q]:
    def match(value: str, fuzzy: bool) -> Q:
        try:
            numbers = [int(part) for part in re.split(r"[,\\]", value) if part.strip()]
        except ValueError:
            raise bad_request(_("%(value)s is not a number.") % {"value": value}) from None
        return Q(**{f"{field}__in": numbers})

    return match


def _modalities(field: str) -> Callable[[str, bool], Q]:
    """ModalitiesInStudy against the study's own backslash-separated list: a test on the row, no join."""

    def match(value: str, fuzzy: bool) -> Q:
        modalities = [m.strip().upper() for m in re.split(r"[,\\]", value) if m.strip()]
        if not modalities or not all(re.fullmatch(r"[A-Z0-9_]{1,16}", m) for m in modalities):
            raise bad_request(_("ModalitiesInStudy takes modality codes such as CT or CT,MR."))
        return Q(**{f"{field}__regex": r"(^|\\)(" + "|".join(modalities) + r")(\\|$)"})

    return match


def _study_matchers(prefix: str) -> dict[str, Callable[[str, bool], Q]]:
    return {
        "00080020": _date(f"{prefix}study_date"),
        "00080030": _time(f"{prefix}study_time"),
        "00080050": _text(f"{prefix}accession_number", exact_case=True),
        "00080061": _modalities(f"{prefix}modalities"),
        "00080090": _person_name(f"{prefix}referring_physician_name"),
        "00081030": _text(f"{prefix}description"),
        "00100010": _patient_name(f"{prefix}patient"),
        "00100020": _text(f"{prefix}patient__patient_id", exact_case=True),
        "00100021": _text(f"{prefix}patient__issuer", exact_case=True),
        "00100030": _date(f"{prefix}patient__birth_date"),
        "00100040": _text(f"{prefix}patient__sex"),
        "0020000D": _uids(f"{prefix}study_instance_uid"),
        "00200010": _text(f"{prefix}study_id", exact_case=True),
    }


def _series_matchers(prefix: str) -> dict[str, Callable[[str, bool], Q]]:
    return {
        "00080060": _text(f"{prefix}modality", exact_case=True),
        "0008103E": _text(f"{prefix}description"),
        "00180015": _text(f"{prefix}body_part"),
        "0020000E": _uids(f"{prefix}series_instance_uid"),
        "00200011": _integer(f"{prefix}series_number"),
    }


MATCHERS: dict[str, dict[str, Callable[[str, bool], Q]]] = {
    Level.STUDY: _study_matchers(""),
    Level.SERIES: {**_study_matchers("study__"), **_series_matchers("")},
    Level.INSTANCE: {
        **_study_matchers("study__"),
        **_series_matchers("series__"),
        "00080016": _uids("sop_class_uid"),
        "00080018": _uids("sop_instance_uid"),
        "00200013": _integer("instance_number"),
        "00280008": _integer("number_of_frames"),
        "00280010": _integer("rows"),
        "00280011": _integer("columns"),
    },
}


# --- the query --------------------------------------------------------------------------------


class Query:
    """A parsed QIDO request: filters, includefield, paging, warnings."""

    def __init__(self, request: HttpRequest, level: str, fixed: Iterable[str] = ()) -> None:
        self.level = level
        self.fuzzy = request.GET.get("fuzzymatching", "").lower() == "true"
        self.filter = Q()
        self.warnings: list[str] = []
        self.include: set[str] = set()
        self.include_all = False
        unsupported: list[str] = []
        for key, values in request.GET.lists():
            if key in CONTROL_PARAMETERS:
                continue
            if "." in key:
                unsupported.append(key)  # sequence matching
                continue
            try:
                tag = tag_of(key)
            except UnknownAttribute:
                raise bad_request(
                    _("%(key)s is neither a DICOM attribute keyword nor a tag (such as PatientName or 00100010).")
                    % {"key": key}
                ) from None
            matcher = MATCHERS[level].get(tag)
            value = values[-1]
            if tag in fixed:
                continue  # given in the path already
            if matcher is None:
                unsupported.append(key)
                continue
            if value == "" or value == "*":
                self.include.add(tag)  # universal matching: only return the attribute
                continue
            self.filter &= matcher(value, self.fuzzy)
            self.include.add(tag)
        if unsupported:
            self.warnings.append(
                f'{WARNING_PREFIX} "The following attributes were not supported for matching and were ignored: '
                + ", ".join(sorted(unsupported))
                + '"'
            )
        for raw in request.GET.getlist("includefield"):
            for key in re.split(r"[,\s]+", raw):
                if not key:
                    continue
                if key.lower() == "all":
                    self.include_all = True
                    continue
                try:
                    self.include.add(tag_of(key))
                except UnknownAttribute:
                    raise bad_request(_("includefield names an unknown attribute: %(key)s") % {"key": key}) from None
        self.limit, self.offset = self._paging(request)

    @staticmethod
    def _paging(request: HttpRequest) -> tuple[int, int]:
        maximum = settings.DICOMWEB_QIDO_MAX_RESULTS
        try:
            limit = int(request.GET.get("limit") or maximum)
            offset = int(request.GET.get("offset") or 0)
        except ValueError:
            raise bad_request(_("limit and offset must be whole numbers.")) from None
        if limit < 0 or offset < 0:
            raise bad_request(_("limit and offset cannot be negative."))
        return min(limit or maximum, maximum), offset

    def page(self, queryset: QuerySet[Any]) -> tuple[list[Any], bool]:
        """The rows of this page, and whether more rows follow."""
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        return rows[: self.limit], len(rows) > self.limit


def _answer(request: HttpRequest, query: Query, results: list[dict[str, Any]], more: bool) -> HttpResponse:
    content_type = wants_json(request_accept(request))
    response = json_response(request, results, content_type)
    warnings = list(query.warnings)
    if more:
        warnings.append(f'{WARNING_PREFIX} "There are additional results that can be requested"')
    if warnings:
        response["Warning"] = ", ".join(warnings)
    response["Cache-Control"] = "no-store, private"
    return response


def _audit(request: HttpRequest, level: str, count: int, study: Study | None = None) -> None:
    audit_record(
        action="study.search",
        request=request,
        institution=study.institution if study else None,
        object_type="study" if study else "",
        object_id=study.study_instance_uid if study else "",
        detail={"level": level, "query": request.GET.urlencode()[:500], "results": count},
    )


# --- attributes ----------------------------------------------------------------------------------


def _study_values(study: Study, root: str) -> dict[str, Any]:
    patient = study.patient
    return {
        "00080005": "ISO_IR 192",
        "00080020": da(study.study_date),
        "00080030": study.study_time,
        "00080050": study.accession_number,
        "00080056": "ONLINE",
        "00080061": study.modality_list,
        "00080090": study.referring_physician_name,
        "00081030": study.description,
        "00081190": f"{root}/studies/{study.study_instance_uid}",
        "00100010": patient.name,
        "00100020": patient.patient_id,
        "00100021": patient.issuer,
        "00100030": da(patient.birth_date),
        "00100040": patient.sex,
        "0020000D": study.study_instance_uid,
        "00200010": study.study_id,
        "00201206": study.number_of_series,
        "00201208": study.number_of_instances,
    }


def _series_values(series: Series, root: str) -> dict[str, Any]:
    study_uid = series.study.study_instance_uid
    return {
        "00080005": "ISO_IR 192",
        "00080056": "ONLINE",
        "00080060": series.modality,
        "0008103E": series.description,
        "00081190": f"{root}/studies/{study_uid}/series/{series.series_instance_uid}",
        "00180015": series.body_part,
        "0020000D": study_uid,
        "0020000E": series.series_instance_uid,
        "00200011": series.series_number,
        "00201209": series.number_of_instances,
    }


def _instance_values(instance: Instance, root: str) -> dict[str, Any]:
    study_uid = instance.study.study_instance_uid
    series_uid = instance.series.series_instance_uid
    return {
        "00080005": "ISO_IR 192",
        "00080016": instance.sop_class_uid,
        "00080018": instance.sop_instance_uid,
        "00080056": "ONLINE",
        "00081190": f"{root}/studies/{study_uid}/series/{series_uid}/instances/{instance.sop_instance_uid}",
        "0020000D": study_uid,
        "0020000E": series_uid,
        "00200013": instance.instance_number,
        "00280008": instance.number_of_frames or None,
        "00280010": instance.rows,
        "00280011": instance.columns,
        "00080060": instance.series.modality,
        "00200011": instance.series.series_number,
    }


def _select(values: dict[str, Any], wanted: set[str]) -> dict[str, dict[str, Any]]:
    return json_model.dataset((tag, value) for tag, value in values.items() if tag in wanted)


def _representatives(model: type[Model], field: str, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The stored DICOM JSON of the first instance of each study (or series) in *ids*, in one query."""
    if not ids:
        return {}
    first = Instance.objects.filter(**{f"{field}__in": ids}).values(field).annotate(first=Min("id")).values("first")
    return dict(Instance.objects.filter(id__in=first).values_list(field, "metadata"))


def _from_metadata(metadata: dict[str, Any], wanted: Iterable[str], have: dict[str, Any]) -> None:
    for tag in wanted:
        if tag not in have and tag in metadata and "BulkDataURI" not in metadata[tag]:
            have[tag] = metadata[tag]


# --- views ---------------------------------------------------------------------------------------


@endpoint("GET")
def search_studies(request: HttpRequest) -> HttpResponse:
    query = Query(request, Level.STUDY)
    studies = (
        visible_studies(request.user).filter(query.filter).select_related("patient").order_by("-study_date", "-id")
    )
    rows, more = query.page(studies)
    root = service_root(request)
    wanted = STUDY_DEFAULTS | query.include | (STUDY_EXTRA if query.include_all else set())
    extra = wanted - STUDY_DEFAULTS - {"00100021"}
    metadata = _representatives(Study, "study_id", [s.pk for s in rows]) if extra else {}
    results = []
    for study in rows:
        dataset = _select(_study_values(study, root), wanted)
        _from_metadata(metadata.get(study.pk, {}), extra, dataset)
        results.append(dict(sorted(dataset.items())))
    _audit(request, Level.STUDY, len(results))
    return _answer(request, query, results, more)


@endpoint("GET")
def search_series(request: HttpRequest, study_uid: str | None = None) -> HttpResponse:
    query = Query(request, Level.SERIES, fixed=("0020000D",) if study_uid else ())
    study = access_study(request.user, study_uid) if study_uid else None
    series_rows = Series.objects.select_related("study__patient")
    if study is not None:
        series_rows = series_rows.filter(study=study).order_by("series_number", "id")
    else:
        series_rows = series_rows.filter(study__in=visible_studies(request.user)).order_by(
            "-study__study_date", "study_id", "series_number", "id"
        )
    rows, more = query.page(series_rows.filter(query.filter))
    root = service_root(request)
    wanted = SERIES_DEFAULTS | query.include
    if query.include_all or study is None:
        # Above the series level and not in the URL: the study's attributes too (PS3.18 10.6.3.3.2).
        wanted |= STUDY_DEFAULTS
    if query.include_all:
        wanted |= SERIES_EXTRA
    study_wanted = wanted & (STUDY_DEFAULTS | {"00100021"})
    extra = wanted - SERIES_DEFAULTS - STUDY_DEFAULTS - {"00100021"}
    metadata = _representatives(Series, "series_id", [s.pk for s in rows]) if extra else {}
    results = []
    for series in rows:
        values = _study_values(series.study, root)
        dataset = _select(values, study_wanted - SERIES_DEFAULTS)
        dataset.update(_select(_series_values(series, root), wanted))
        _from_metadata(metadata.get(series.pk, {}), extra, dataset)
        results.append(dict(sorted(dataset.items())))
    _audit(request, Level.SERIES, len(results), study)
    return _answer(request, query, results, more)


@endpoint("GET")
def search_instances(request: HttpRequest, study_uid: str | None = None, series_uid: str | None = None) -> HttpResponse:
    fixed = tuple(tag for tag, uid in (("0020000D", study_uid), ("0020000E", series_uid)) if uid)
    query = Query(request, Level.INSTANCE, fixed=fixed)
    study = access_study(request.user, study_uid) if study_uid else None
    instances = Instance.objects.select_related("series", "study__patient")
    if study is not None:
        instances = instances.filter(study=study)
        if series_uid:
            instances = instances.filter(series__series_instance_uid=series_uid)
        instances = instances.order_by("series__series_number", "series_id", "instance_number", "id")
    else:
        instances = instances.filter(study__in=visible_studies(request.user)).order_by(
            "-study__study_date", "study_id", "series_id", "instance_number", "id"
        )
    wanted = INSTANCE_DEFAULTS | query.include
    if query.include_all or series_uid is None:
        wanted |= SERIES_DEFAULTS
    if query.include_all or study is None:
        wanted |= STUDY_DEFAULTS
    if not query.include_all and not (wanted - INSTANCE_DEFAULTS - STUDY_DEFAULTS - SERIES_DEFAULTS):
        instances = instances.defer("metadata")
    rows, more = query.page(instances.filter(query.filter))
    if study_uid and series_uid and not rows and query.offset == 0:
        # An unknown series answers 404, like an unknown study.
        if not Series.objects.filter(study=study, series_instance_uid=series_uid).exists():
            raise Http404("No such series")
    root = service_root(request)
    results = []
    for instance in rows:
        instance.series.study = instance.study  # the same row: no query per instance
        values = {
            **_study_values(instance.study, root),
            **_series_values(instance.series, root),
            **_instance_values(instance, root),
        }
        dataset = _select(values, wanted)
        if query.include_all or wanted - set(values):
            metadata = instance.metadata
            _from_metadata(metadata, metadata.keys() if query.include_all else wanted, dataset)
        results.append(dict(sorted(dataset.items())))
    _audit(request, Level.INSTANCE, len(results), study)
    return _answer(request, query, results, more)
