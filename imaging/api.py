"""REST API of the archive (DRF): programmatic upload and study lookup.

Authentication: the browser session, or a personal access token sent as
``Authorization: Bearer <token>`` (see the profile page). Studies are only
ever looked up through ``imaging.access``.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError, UnsupportedMediaType
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imaging import access
from imaging.ingest import EntryPoint
from imaging.models import Series, Study
from imaging.views import PAGE_SIZE, filter_studies, ingest_uploaded_file


class UploadApi(APIView):
    """POST one or more files (DICOM or zip) in the multipart field ``file``."""

    parser_classes = [MultiPartParser, FormParser]

    class OutputSerializer(serializers.Serializer[Any]):
        name = serializers.CharField()
        outcome = serializers.ChoiceField(choices=["stored", "duplicate", "conflict", "rejected", "skipped"])
        reason = serializers.CharField(allow_blank=True)
        sop_instance_uid = serializers.CharField(allow_blank=True)
        study_instance_uid = serializers.CharField(allow_blank=True)
        series_instance_uid = serializers.CharField(allow_blank=True)
        size = serializers.IntegerField()

    def post(self, request: Request) -> Response:
        if not (request.content_type or "").startswith("multipart/form-data"):
            raise UnsupportedMediaType(
                request.content_type, detail="Send files as multipart/form-data in the field “file”."
            )
        uploads = request.FILES.getlist("file")
        if not uploads:
            raise ParseError("No file was sent: use the multipart field “file” (repeat it for several files).")
        code = request.POST.get("institution") or None
        results = []
        try:
            for upload in uploads:
                results.extend(
                    ingest_uploaded_file(
                        request=request._request, upload=upload, institution_code=code, entry_point=EntryPoint.API
                    )
                )
        except Http404 as exc:
            raise NotFound("You cannot upload for that institution (or you belong to several: name one).") from exc
        data = self.OutputSerializer([result.as_dict() for result in results], many=True).data
        return Response({"results": data}, status=status.HTTP_200_OK)


class SeriesSerializer(serializers.ModelSerializer[Series]):
    class Meta:
        model = Series
        fields = ["series_instance_uid", "modality", "series_number", "description", "body_part", "number_of_instances"]


class StudySerializer(serializers.ModelSerializer[Study]):
    patient_name = serializers.CharField(source="patient.display_name")
    patient_id = serializers.CharField(source="patient.patient_id")
    institution = serializers.CharField(source="institution.code")
    modalities = serializers.ListField(source="modality_list", child=serializers.CharField())

    class Meta:
        model = Study
        fields = [
            "study_instance_uid",
            "patient_name",
            "patient_id",
            "study_date",
            "accession_number",
            "description",
            "modalities",
            "number_of_series",
            "number_of_instances",
            "status",
            "institution",
            "created_at",
        ]


class StudyDetailSerializer(StudySerializer):
    series = SeriesSerializer(many=True)

    class Meta(StudySerializer.Meta):
        fields = [*StudySerializer.Meta.fields, "series"]


class StudyListApi(APIView):
    """GET studies the caller may see; query: q, from, to, modality, status, institution, limit, offset."""

    def get(self, request: Request) -> Response:
        studies = filter_studies(access.visible_studies(request.user), request.query_params.dict())
        studies = studies.select_related("patient", "institution").order_by("-study_date", "-created_at", "-id")
        try:
            limit = min(max(int(request.query_params.get("limit", PAGE_SIZE)), 1), 200)
            offset = max(int(request.query_params.get("offset", 0)), 0)
        except ValueError as exc:
            raise ParseError("limit and offset must be whole numbers.") from exc
        page = list(studies[offset : offset + limit])
        return Response(
            {
                "count": studies.count(),
                "limit": limit,
                "offset": offset,
                "results": StudySerializer(page, many=True).data,
            }
        )


class StudyDetailApi(APIView):
    def get(self, request: Request, study_uid: str) -> Response:
        try:
            study = access.access_study(request.user, study_uid)
        except Http404 as exc:
            raise NotFound("No such study.") from exc
        return Response(StudyDetailSerializer(study).data)
