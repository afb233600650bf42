"""pytest plugin loaded before Django: the test environment's defaults.

Loaded with ``-p`` (see pyproject.toml) so that it runs before pytest-django
reads the settings. Background work runs synchronously, files go to a
throw-away folder, passwords use a fast hasher. DATABASE_URL and REDIS_URL
are left as the caller set them, so CI runs the same suite on PostgreSQL and
Redis.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TASK_MODE", "eager")
os.environ.pop("DEBUG", None)
if "CLINICNET_TEST_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="clinicnet-test-")
    os.environ["CLINICNET_TEST_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, True)
os.environ["CLINICNET_DATA_DIR"] = os.environ["CLINICNET_TEST_DATA_DIR"]


def pytest_configure(config: object) -> None:
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
