from __future__ import annotations

from django.apps import AppConfig


class ClinicNetConfig(AppConfig):
    name = "clinicnet"
    verbose_name = "ClinicNet"
