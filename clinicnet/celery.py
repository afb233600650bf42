"""The Celery application.

Configuration comes from Django settings (the ``CELERY_`` ones), so that the
broker is the same Redis the channel layer uses when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinicnet.settings")

app = Celery("clinicnet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
