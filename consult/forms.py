from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from consult import services
from consult.models import Report
from imaging.models import Instance, Series, Study
from institutions.models import Institution, User


class _InstitutionChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Institution) -> str:
        return f"{obj.display_name} ({obj.get_kind_display()})"


class _ReaderChoice(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name()


class _SeriesChoice(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Series) -> str:
        number = obj.series_number if obj.series_number is not None else "–"
        return f"#{number} {obj.modality} {obj.description} ({obj.number_of_instances})".strip()


class _StudyChoice(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Study) -> str:
        date = obj.study_date.isoformat() if obj.study_date else "–"
        return f"{date} {obj.modalities.replace(chr(92), '/')} {obj.description}".strip()


class ConsultationForm(forms.Form):
    target = _InstitutionChoice(label=_("Reading institution"), queryset=Institution.objects.none())
    named_reader = _ReaderChoice(
        label=_("Reader (optional)"),
        queryset=User.objects.none(),
        required=False,
        help_text=_("Leave empty to let any reader of the institution take it."),
    )
    priority = forms.TypedChoiceField(
        label=_("Priority"), choices=Study.Priority.choices, coerce=int, initial=Study.Priority.ROUTINE
    )
    clinical_question = forms.CharField(
        label=_("Clinical question"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000
    )
    clinical_history = forms.CharField(
        label=_("Clinical history"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=8000
    )
    series = _SeriesChoice(
        label=_("Series to read"), queryset=Series.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    related_studies = _StudyChoice(
        label=_("Also share these earlier studies of the patient"),
        queryset=Study.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    def __init__(self, *args: Any, study: Study, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        targets = services.target_institutions(study)
        self.fields["target"].queryset = targets  # type: ignore[attr-defined]
        affiliated = targets.filter(pk=study.institution.health_center_id or 0).first()
        if affiliated is not None:
            self.fields["target"].initial = affiliated.pk
        readers = [reader.pk for target in targets for reader in services.readers_of(target)]
        self.fields["named_reader"].queryset = User.objects.filter(pk__in=readers).order_by("name")  # type: ignore[attr-defined]
        self.fields["series"].queryset = study.series.order_by("series_number", "id")  # type: ignore[attr-defined]
        self.fields["series"].initial = list(study.series.values_list("pk", flat=True))
        self.fields["related_studies"].queryset = services.prior_studies(study)  # type: ignore[attr-defined]


class DeclineForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000)


class CommentForm(forms.Form):
    body = forms.CharField(
        label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=8000
    )
    key_image = forms.ModelChoiceField(label=_("Key image"), queryset=Instance.objects.none(), required=False)
    frame = forms.IntegerField(label=_("Frame"), min_value=1, initial=1, required=False)

    def __init__(self, *args: Any, instances: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["key_image"].queryset = instances  # type: ignore[attr-defined]
        self.fields["key_image"].label_from_instance = _instance_label  # type: ignore[attr-defined]


def _instance_label(instance: Instance) -> str:
    series = instance.series
    frames = f" · {instance.number_of_frames} frames" if instance.number_of_frames > 1 else ""
    return f"{series.modality} #{series.series_number or '–'} / {instance.instance_number or '–'}{frames}"


class ReportForm(forms.Form):
    kind = forms.ChoiceField(label=_("Template"), choices=Report.Kind.choices, required=False)
    findings = forms.CharField(label=_("Findings"), widget=forms.Textarea(attrs={"rows": 12}), required=False)
    impression = forms.CharField(label=_("Impression"), widget=forms.Textarea(attrs={"rows": 5}), required=False)
    addendum = forms.CharField(label=_("Addendum"), widget=forms.Textarea(attrs={"rows": 4}), required=False)
