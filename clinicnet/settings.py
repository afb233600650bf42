"""ClinicNet settings: one module, every value from the environment.

With no environment variables at all ClinicNet runs in its *embedded* mode:
SQLite and files under ``var/``, an in-process channel layer and background
tasks run inside the web process. Setting ``DATABASE_URL`` and ``REDIS_URL``
switches to the production shape (PostgreSQL, Redis channel layer, Celery
workers). ``.env.example`` lists every variable read here.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from django.utils.translation import gettext_lazy as _

from clinicnet.lib.env import (
    envbool,
    envint,
    envlist,
    envsecret,
    envstr,
    generated_secret,
)

# Lets classes such as ModelAdmin and QuerySet take type parameters at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("CLINICNET_DATA_DIR", str(BASE_DIR / "var"))).resolve()

# --- Core ---------------------------------------------------------------

DEBUG = envbool("DEBUG", False)
SECRET_KEY = envsecret("SECRET_KEY") or generated_secret(DATA_DIR / "secret_key")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# Public address used in e-mails (invitation and password-reset links).
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "channels",
    "axes",
    "clinicnet",
    "clinicnet.audit",
    "institutions",
    "imaging",
    "consult",
    "coreading",
    "django_vite",
]

MIDDLEWARE = [
    # /dicomweb/ requests leave here for DICOMWEB_MIDDLEWARE below (imaging/dicomweb/middleware.py).
    "imaging.dicomweb.middleware.DicomwebMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise: its static files stream under ASGI instead of being read whole first.
    "clinicnet.streaming.AsyncStreamingMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Renews the idle timeout with a session write at most once a minute (not on every frame).
    "clinicnet.sessions.SessionRenewalMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "institutions.middleware.ActiveAccessMiddleware",
    # After LocaleMiddleware: a signed-in user's saved choice wins over the
    # browser's Accept-Language.
    "institutions.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks, so that it sees the final login outcome.
    "axes.middleware.AxesMiddleware",
]
# --- DICOMweb middleware (imaging/dicomweb/middleware.py) ----------------------------
# The part of MIDDLEWARE that /dicomweb/ requests run through, in one thread (the viewer sends one
# request per frame). Left out: static files, messages, django-axes (DICOMweb never signs anyone
# in) and CsrfViewMiddleware (imaging/dicomweb/common.py checks CSRF on session-authenticated
# writes itself). Keep the order of MIDDLEWARE; a new middleware that DICOMweb needs goes here too.
DICOMWEB_MIDDLEWARE = [
    # Whole studies stream under ASGI instead of being collected first (clinicnet/streaming.py).
    "clinicnet.streaming.AsyncStreamingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "clinicnet.sessions.SessionRenewalMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "institutions.middleware.ActiveAccessMiddleware",
    "institutions.middleware.UserLanguageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# --- End of DICOMweb middleware ---------------------------------------------------------

ROOT_URLCONF = "clinicnet.urls"
ASGI_APPLICATION = "clinicnet.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "clinicnet" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "institutions.context_processors.memberships",
                "consult.context_processors.notifications",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

_env = environ.Env()
DATABASE_URL = envstr("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": _env.db_url_config(DATABASE_URL)}
    DATABASES["default"]["CONN_MAX_AGE"] = envint("DATABASE_CONN_MAX_AGE", 0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Under ASGI each request runs in a thread of its own, so CONN_MAX_AGE
    # cannot keep a connection across requests; a psycopg pool can (DATABASE_POOL=true,
    # the production setting in docker-compose.yml).
    if envbool("DATABASE_POOL", False):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        # Per process. A request holds its connection until its answer is sent (a streamed study
        # download, for as long as that takes), so the pool may grow well past what it keeps open.
        pool = {
            "min_size": envint("DATABASE_POOL_MIN_SIZE", 2),
            "max_size": envint("DATABASE_POOL_MAX_SIZE", 20),
            "timeout": 10,  # seconds a request waits for a connection before it fails
        }
        DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), "pool": pool}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "clinicnet.sqlite3",
            # Background threads write alongside requests in the embedded
            # mode; wait for the lock instead of failing at once.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # Tests get a file too, not Django's shared in-memory database: there a
            # second writer (a render thread, the SCP's indexer) fails at once with
            # "database table is locked" instead of waiting for the lock as here.
            "TEST": {"NAME": DATA_DIR / "test-clinicnet.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, Celery broker, cache ----------------------------

REDIS_URL = envstr("REDIS_URL")
if REDIS_URL:
    # Redis pub/sub (RedisPubSubChannelLayer) by default: under co-reading load it delivered 8×
    # the messages of the list-based RedisChannelLayer (CHANNEL_LAYER=redis), which dropped most
    # pointers at its channel capacity; bench/README.md (co-reading) has the figures for both.
    # clinicnet.channel_layer lets a process's publishes go out concurrently.
    if envstr("CHANNEL_LAYER", "redis-pubsub") == "redis-pubsub":
        CHANNEL_LAYERS = {
            "default": {"BACKEND": "clinicnet.channel_layer.PubSubChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        }
    else:
        CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    "hosts": [REDIS_URL],
                    # Messages a channel may hold before sends to it are dropped (slow consumers).
                    "capacity": envint("CHANNEL_LAYER_CAPACITY", 100),
                    "expiry": envint("CHANNEL_LAYER_EXPIRY", 60),
                    "group_expiry": envint("CHANNEL_LAYER_GROUP_EXPIRY", 86400),
                },
            }
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# How background work runs: "celery" sends it to worker processes through the
# broker; "thread" runs it inside the web process after the response (the
# embedded default, so uploads answer before previews exist); "eager" runs it
# synchronously (tests).
TASK_MODE = envstr("TASK_MODE", "celery" if REDIS_URL else "thread")
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = TASK_MODE != "celery"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Storage ----------------------------------------------------------------

MEDIA_ROOT = DATA_DIR / "storage"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_URL = "/static/"
STATICFILES_DIRS: list[Path | tuple[str, Path]] = [BASE_DIR / "clinicnet" / "static"]
# --- Viewer bundle (frontend/, built by `make frontend`) ---------------------
# Vite writes content-hashed files and a manifest into frontend/dist/ (git-ignored);
# collectstatic publishes them under /static/viewer/, the `base` in
# frontend/vite.config.ts. With VITE_DEV_MODE (default: DEBUG) the pages load the
# viewer from `npm run dev` on port 5173 instead.
VIEWER_BUILD_DIR = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS.append(("viewer", VIEWER_BUILD_DIR))
DJANGO_VITE = {
    "default": {
        "dev_mode": envbool("VITE_DEV_MODE", DEBUG),
        "static_url_prefix": "viewer",
        "manifest_path": VIEWER_BUILD_DIR / "manifest.json",
    }
}
# --- End of viewer bundle -----------------------------------------------------
S3_BUCKET = envstr("S3_BUCKET")
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": envstr("S3_ENDPOINT_URL") or None,
            "region_name": envstr("S3_REGION") or None,
            "access_key": envsecret("S3_ACCESS_KEY"),
            "secret_key": envsecret("S3_SECRET_KEY"),
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            # WhiteNoise's compressed, hashed storage; the viewer bundle keeps Vite's names (see the module).
            else "clinicnet.staticfiles.StaticFilesStorage"
        )
    },
}
WHITENOISE_MAX_AGE = 3600

# --- DICOM archive limits -------------------------------------------------------

DICOM_MAX_FILE_BYTES = envint("DICOM_MAX_FILE_MB", 1024) * 1024 * 1024
# A zip is refused entry by entry when one member expands more than this many
# times its compressed size, or the whole archive beyond ZIP_MAX_TOTAL_MB.
ZIP_MAX_RATIO = envint("ZIP_MAX_RATIO", 200)
ZIP_MAX_TOTAL_BYTES = envint("ZIP_MAX_TOTAL_MB", 20 * 1024) * 1024 * 1024
ZIP_MAX_ENTRIES = envint("ZIP_MAX_ENTRIES", 50_000)
# Uploads go to disk (the data folder) once over 2.5 MB, never whole into memory.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "spool")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = 2000
# --- DICOM DIMSE Storage SCP (manage.py dicom_scp; imaging/dimse.py) ---------------
# Modalities push to this AE title on this port; the calling AE title must be
# registered for an active institution (institutions.AETitle).
DICOM_SCP_AE_TITLE = envstr("DICOM_SCP_AE_TITLE", "CLINICNET")
DICOM_SCP_PORT = envint("DICOM_SCP_PORT", 11112)
DICOM_SCP_BIND = envstr("DICOM_SCP_BIND", "127.0.0.1")
DICOM_SCP_MAX_ASSOCIATIONS = envint("DICOM_SCP_MAX_ASSOCIATIONS", 10)
# --- End of DIMSE SCP ------------------------------------------------------------
# Preview images: the longest side of per-frame previews and of thumbnails.
PREVIEW_SIZE = envint("PREVIEW_SIZE", 512)
THUMBNAIL_SIZE = envint("THUMBNAIL_SIZE", 128)

# --- Consultations (consult) ---------------------------------------------------
# After a consultation is closed, declined or cancelled, the readers keep
# access to its studies this long (to finish a comment or an addendum).
CONSULT_GRANT_GRACE_MINUTES = envint("CONSULT_GRANT_GRACE_MINUTES", 60)
# Hours from the request to the due time, by priority; open ones past it are overdue.
CONSULT_DUE_HOURS = {
    "emergency": envint("CONSULT_DUE_EMERGENCY_HOURS", 1),
    "urgent": envint("CONSULT_DUE_URGENT_HOURS", 24),
    "routine": envint("CONSULT_DUE_ROUTINE_HOURS", 72),
}
CONSULT_EMAIL_NOTIFICATIONS = envbool("CONSULT_EMAIL_NOTIFICATIONS", True)
# The font for Korean text in report PDFs (a file, optionally ":index" in a
# collection); empty: ask fontconfig for Noto Sans CJK KR (Debian's fonts-noto-cjk).
CONSULT_PDF_FONT = envstr("CONSULT_PDF_FONT", "")
# --- End of consultations ---------------------------------------------------------

# --- Co-reading (coreading; docs/coreading.md) ------------------------------------
# The shared store of the rooms' live state (sequence numbers, presence, leader,
# replay log); empty: process memory, which is right only for one process (embedded).
COREADING_REDIS_URL = envstr("COREADING_REDIS_URL", REDIS_URL)
COREADING_MAX_MESSAGE_BYTES = envint("COREADING_MAX_MESSAGE_BYTES", 16384)
COREADING_POINTER_RATE = envint("COREADING_POINTER_RATE", 30)
COREADING_MESSAGE_RATE = envint("COREADING_MESSAGE_RATE", 50)
COREADING_HEARTBEAT_SECONDS = float(envstr("COREADING_HEARTBEAT_SECONDS", "5"))
COREADING_PRESENCE_TTL = envint("COREADING_PRESENCE_TTL", 15)
COREADING_RECHECK_SECONDS = envint("COREADING_RECHECK_SECONDS", 60)
COREADING_JOIN_TIMEOUT = envint("COREADING_JOIN_TIMEOUT", 10)
COREADING_REPLAY_LOG = envint("COREADING_REPLAY_LOG", 1000)
COREADING_CHAT_HISTORY = envint("COREADING_CHAT_HISTORY", 50)
COREADING_IDEMPOTENCY_SECONDS = envint("COREADING_IDEMPOTENCY_SECONDS", 600)
COREADING_ROOM_TTL = envint("COREADING_ROOM_TTL", 86400)
COREADING_VIEWPORT_SAVE_SECONDS = envint("COREADING_VIEWPORT_SAVE_SECONDS", 10)
# One "coreading.join" audit row per person and room within this many seconds (0: every connect).
COREADING_JOIN_AUDIT_SECONDS = envint("COREADING_JOIN_AUDIT_SECONDS", 300)
# --- End of co-reading ----------------------------------------------------------------

# --- DICOMweb (imaging/dicomweb) ---------------------------------------------
# Origins of separately hosted viewers (OHIF) allowed to call /dicomweb/ from
# the browser with a bearer token, e.g. "https://viewer.example.org"; "*" for any.
DICOMWEB_CORS_ORIGINS = envlist("DICOMWEB_CORS_ORIGINS", [])
# The most results one QIDO-RS answer carries (a Warning header says when there are more).
DICOMWEB_QIDO_MAX_RESULTS = envint("DICOMWEB_QIDO_MAX_RESULTS", 1000)
# --- End of DICOMweb ------------------------------------------------------------

# --- Authentication and sessions -------------------------------------------

AUTH_USER_MODEL = "institutions.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "institutions.backends.EmailOrUsernameBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2

# A reading session ends after this much inactivity; requests renew it, with a
# database write at most once a minute (clinicnet/sessions.py), not on every one.
SESSION_COOKIE_AGE = envint("SESSION_IDLE_MINUTES", 30) * 60
SESSION_SAVE_EVERY_REQUEST = False
SESSION_RENEW_SECONDS = 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Behind TLS (production) cookies are Secure and HSTS is on. The embedded
# mode serves plain HTTP on 127.0.0.1, where Secure cookies would not stick.
HTTPS = envbool("HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and envbool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if HTTPS else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Lockout: after AXES_FAILURE_LIMIT failed logins for one account from one
# address the account is locked for AXES_COOLOFF_TIME.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "clinicnet.audit.client.client_address"
# Behind a reverse proxy (nginx in production) the client's address is the
# last hop the proxy appends to X-Forwarded-For; only trust it when told to.
TRUST_X_FORWARDED_FOR = envbool("TRUST_X_FORWARDED_FOR", False)

INVITATION_VALID_DAYS = envint("INVITATION_VALID_DAYS", 7)

# --- REST framework -----------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "institutions.tokens.PersonalAccessTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {"TITLE": "ClinicNet API", "VERSION": "1"}

# --- Language and time ---------------------------------------------------------

LANGUAGE_CODE = "ko"
LANGUAGES = [("ko", _("Korean")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "clinicnet_language"
TIME_ZONE = envstr("TIME_ZONE", "Asia/Seoul")
USE_I18N = True
USE_TZ = True

# --- E-mail --------------------------------------------------------------------

_email_url = envstr("EMAIL_URL")
if _email_url:
    vars().update(_env.email_url_config(_email_url))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "ClinicNet <no-reply@clinicnet.local>")

# --- Logging -------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Our audit trail records logins; axes' own lines only repeat them.
        "axes": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        # pydicom warns about every deviation it tolerates; we report real failures ourselves.
        "pydicom": {"level": "ERROR"},
    },
}
