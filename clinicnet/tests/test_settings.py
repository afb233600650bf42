"""Settings come from the environment, with embedded defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "task_mode": settings.TASK_MODE,
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "storage": settings.STORAGES["default"]["BACKEND"],
    "debug": settings.DEBUG,
    "secret": settings.SECRET_KEY,
    "secure_cookie": settings.SESSION_COOKIE_SECURE,
    "idle": settings.SESSION_COOKIE_AGE,
}))
"""
CONFIG_NAMES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CHANNEL_LAYER",
    "TASK_MODE",
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "S3_BUCKET",
    "CELERY_BROKER_URL",
    "HTTPS",
    "SESSION_IDLE_MINUTES",
)


def settings_with(tmp_path: Path, **env: str) -> dict[str, object]:
    clean = {key: value for key, value in os.environ.items() if key not in CONFIG_NAMES}
    clean.update({"CLINICNET_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "clinicnet.settings", **env})
    output = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_with_nothing_set_everything_is_embedded(tmp_path: Path) -> None:
    config = settings_with(tmp_path)
    assert config["db"] == "django.db.backends.sqlite3"
    assert config["db_name"] == str(tmp_path / "clinicnet.sqlite3")
    assert config["layer"] == "channels.layers.InMemoryChannelLayer"
    assert config["task_mode"] == "thread"
    assert config["storage"] == "django.core.files.storage.FileSystemStorage"
    assert config["debug"] is False
    assert config["secure_cookie"] is False
    assert config["idle"] == 30 * 60
    # The generated secret key is kept in the data folder and reused.
    assert (tmp_path / "secret_key").read_text() == config["secret"]
    assert len(str(config["secret"])) >= 50
    assert settings_with(tmp_path)["secret"] == config["secret"]


def test_database_and_redis_urls_switch_to_the_production_shape(tmp_path: Path) -> None:
    config = settings_with(
        tmp_path, DATABASE_URL="postgres://u:p@db.example:5432/clinicnet", REDIS_URL="redis://cache:6379/0"
    )
    assert config["db"] == "django.db.backends.postgresql"
    assert config["db_name"] == "clinicnet"
    assert config["layer"] == "clinicnet.channel_layer.PubSubChannelLayer"
    assert config["task_mode"] == "celery"
    assert config["eager"] is False
    assert config["broker"] == "redis://cache:6379/0"
    listed = settings_with(tmp_path, REDIS_URL="redis://cache:6379/0", CHANNEL_LAYER="redis")
    assert listed["layer"] == "channels_redis.core.RedisChannelLayer"


def test_secrets_debug_storage_and_cookies_can_be_set(tmp_path: Path) -> None:
    secret_file = tmp_path / "key.txt"
    secret_file.write_text("from-a-file\n")
    config = settings_with(
        tmp_path,
        SECRET_KEY_FILE=str(secret_file),
        DEBUG="true",
        S3_BUCKET="dicom",
        HTTPS="yes",
        SESSION_IDLE_MINUTES="10",
    )
    assert config["secret"] == "from-a-file"
    assert config["debug"] is True
    assert config["storage"] == "storages.backends.s3.S3Storage"
    assert config["secure_cookie"] is True
    assert config["idle"] == 600
    assert not (tmp_path / "secret_key").exists()


def test_a_bad_value_stops_start_up_with_its_name(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in CONFIG_NAMES}
    clean.update(
        {"CLINICNET_DATA_DIR": str(tmp_path), "DEBUG": "maybe", "DJANGO_SETTINGS_MODULE": "clinicnet.settings"}
    )
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert result.returncode != 0
    assert "DEBUG must be true or false, not 'maybe'" in result.stderr
