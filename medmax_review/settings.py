"""MedMax Review settings: everything comes from environment variables (see .env.example)."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from medmax_review.core.env import (
    env_bool,
    env_float,
    env_int,
    env_json_object,
    env_list,
    env_str,
)
from medmax_review.core.secret import local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MEDMAX_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is False")
    SECRET_KEY = local_secret_key(VAR_DIR)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "medmax_review.core",
    "medmax_review.projects",
    "medmax_review.sources",
    "medmax_review.generation",
    "medmax_review.review",
    "medmax_review.scoring",
    "medmax_review.exports",
    "medmax_review.evaluation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the app itself (compressed, hashed names), so production needs no
    # separate file server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "medmax_review.core.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "medmax_review.urls"
WSGI_APPLICATION = "medmax_review.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Zero-setup default: SQLite under var/. DATABASE_URL switches to PostgreSQL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'medmax.sqlite3'}")
# Persistent connections (no connection set-up per request), checked before reuse so one the
# server dropped is replaced instead of failing the request. 0 closes each after its request.
DATABASES = {"default": dj_database_url.parse(
    DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True,
)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets the web process read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests use a file too: Django's in-memory test database shares one cache, which locks
    # whole tables and ignores the timeout, so two writers fail where the app's would wait.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sign-in throttling (django-axes) on every login form, the Django admin's included: after
# AXES_FAILURE_LIMIT failures an account, and separately a client address, is locked for
# AXES_COOLOFF_MINUTES. Staff unlock from the admin (Access attempts) or with
# `python manage.py axes_reset_username USERNAME` / `axes_reset_ip ADDRESS`.
AUTHENTICATION_BACKENDS = [
    "medmax_review.core.auth_backends.ThrottledSignIn",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed names once collected for production; plain files while developing.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
                    else "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Images in object storage (docs/deploy.md): a storage backend such as django-storages'
# "storages.backends.s3.S3Storage" and its options as JSON. Credentials stay in the backend's
# own environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), not in these.
IMAGE_STORAGE_BACKEND = env_str("IMAGE_STORAGE_BACKEND", "")
if IMAGE_STORAGE_BACKEND:
    STORAGES["images"] = {"BACKEND": IMAGE_STORAGE_BACKEND,
                          "OPTIONS": env_json_object("IMAGE_STORAGE_OPTIONS")}
MEDIA_URL = "media/"

# Uploads: imports may be large ZIPs; Django streams them to a temporary file.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
MEDMAX_MAX_IMAGE_BYTES = env_int("MEDMAX_MAX_IMAGE_BYTES", 50 * 1024 * 1024)
MEDMAX_MAX_IMAGE_PIXELS = env_int("MEDMAX_MAX_IMAGE_PIXELS", 100_000_000)
MEDMAX_MAX_UPLOAD_BYTES = env_int("MEDMAX_MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)
# One JSON line longer than this is refused without being read into memory.
MEDMAX_MAX_LINE_BYTES = env_int("MEDMAX_MAX_LINE_BYTES", 16 * 1024 * 1024)
# A failed upload is kept this long for a second look, then removed by the periodic sweep;
# a successful one is removed as soon as its import ends.
MEDMAX_FAILED_UPLOAD_KEEP_HOURS = env_int("MEDMAX_FAILED_UPLOAD_KEEP_HOURS", 72)

# Celery: the default broker is kombu's filesystem transport under var/, which needs no server
# and delivers across processes. CELERY_BROKER_URL switches to Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_dir = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# One queue per kind of work, so a long import or export never waits behind thousands of
# scoring batches, and each kind can get machines sized for it (docs/deploy.md). A worker
# started without -Q consumes every queue below, so a single worker still runs everything.
CELERY_TASK_QUEUES = {name: {} for name in ("default", "import", "generation", "scoring", "export")}
CELERY_TASK_DEFAULT_QUEUE = "default"
_MAINTENANCE = {"queue": "default"}  # beat's sweeps: short, and must run while a queue is busy
CELERY_TASK_ROUTES = {
    # Exact names are matched before the module patterns.
    "medmax_review.sources.tasks.uploads_sweep": _MAINTENANCE,
    "medmax_review.sources.tasks.import_runs_resend": _MAINTENANCE,
    "medmax_review.generation.tasks.jobs_resend": _MAINTENANCE,
    "medmax_review.exports.tasks.versions_resend": _MAINTENANCE,
    "medmax_review.scoring.tasks.unscored_resend": _MAINTENANCE,
    "medmax_review.scoring.tasks.reject_models_refit": _MAINTENANCE,
    "medmax_review.sources.tasks.*": {"queue": "import"},
    # Evaluation asks the same LLM backends as generation: I/O bound like it.
    "medmax_review.generation.tasks.*": {"queue": "generation"},
    "medmax_review.evaluation.tasks.*": {"queue": "generation"},
    "medmax_review.scoring.tasks.*": {"queue": "scoring"},
    "medmax_review.exports.tasks.*": {"queue": "export"},
}
# Periodic work, run by `celery -A medmax_review beat` (one per installation).
CELERY_BEAT_SCHEDULE = {
    "uploads-sweep": {"task": "medmax_review.sources.tasks.uploads_sweep", "schedule": 3600.0},
    # Work whose message was lost (the broker was down at commit) or whose worker died is
    # sent again; every run is claimed with a lease, so nothing runs twice.
    "imports-resend": {"task": "medmax_review.sources.tasks.import_runs_resend", "schedule": 60.0},
    "jobs-resend": {"task": "medmax_review.generation.tasks.jobs_resend", "schedule": 60.0},
    "exports-resend": {"task": "medmax_review.exports.tasks.versions_resend", "schedule": 60.0},
    "scoring-resend": {"task": "medmax_review.scoring.tasks.unscored_resend", "schedule": 60.0},
    # Each project's clinician reject risk, relearned from its verdicts.
    "reject-models-refit": {
        "task": "medmax_review.scoring.tasks.reject_models_refit", "schedule": 3600.0,
    },
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A late-acked task whose worker died is handed out again after this many seconds.
    _visibility = env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility,
        "unacked_restore_interval": max(1, min(10, _visibility // 2)),
        "unacked_restore_throttle": 1,
    }

# LLM backends. Keys stay in the worker's environment; they never travel through the broker.
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "")
OPENAI_API_KEY = env_str("OPENAI_API_KEY", "")
OPENAI_MODEL = env_str("OPENAI_MODEL", "")
# Base URLs an admin may point a job at; anything else is refused (no SSRF by default).
LLM_ALLOWED_BASE_URLS = env_list("LLM_ALLOWED_BASE_URLS", [OPENAI_BASE_URL] if OPENAI_BASE_URL else [])
# Host names of allowed servers that may resolve to private addresses (see backends.addresses).
LLM_ALLOWED_PRIVATE_HOSTS = env_list("LLM_ALLOWED_PRIVATE_HOSTS", [])
LLM_TIMEOUT_SECONDS = env_float("LLM_TIMEOUT_SECONDS", 60.0)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 4)
LLM_CONCURRENCY = env_int("LLM_CONCURRENCY", 8)
LOCAL_MODEL_PATH = env_str("LOCAL_MODEL_PATH", "")
LOCAL_MODEL_THREADS = env_int("LOCAL_MODEL_THREADS", 2)
# Generation jobs: records read per batch (and at most this many requests in flight), records
# per chunk (a task of its own: the unit several workers share a job by), and how long a
# running chunk may go without a heartbeat before another worker may take it over.
GENERATION_BATCH_SIZE = env_int("GENERATION_BATCH_SIZE", 32)
GENERATION_CHUNK_SIZE = env_int("GENERATION_CHUNK_SIZE", 64)
GENERATION_STALE_SECONDS = env_int("GENERATION_STALE_SECONDS", 120)
# Exports: approved candidates read per batch (the heartbeat and progress are saved after
# each), and how long a running build may go without a heartbeat before another worker may
# take it over and rebuild it from scratch.
EXPORT_BATCH_SIZE = env_int("EXPORT_BATCH_SIZE", 5000)
EXPORT_STALE_SECONDS = env_int("EXPORT_STALE_SECONDS", 120)
# Imports: how long a running import may go without a progress write before it is taken over.
IMPORT_STALE_SECONDS = env_int("IMPORT_STALE_SECONDS", 120)
# Rows per import batch (one commit each); smaller batches bound the work a crash repeats.
IMPORT_BATCH_ROWS = env_int("IMPORT_BATCH_ROWS", 2000)

# Grounding's optional sentence-embedding model (the embeddings extra): torch threads per
# scoring process (workers scale by processes, one per core), and whether its matrix products
# run in bfloat16 on CPUs that compute it natively (AVX-512 BF16 or AMX): 1.6x faster, cosine
# similarities within 0.004 of float32's; the score's evidence says "(bfloat16)" when used.
EMBEDDING_THREADS = env_int("EMBEDDING_THREADS", 1)
EMBEDDING_BF16 = env_bool("EMBEDDING_BF16", True)

# Review.
CLAIM_TTL_SECONDS = env_int("CLAIM_TTL_SECONDS", 300)

# Security headers; strict CSP: scripts and styles only from our own static files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Only a proxy that sets (and strips from clients) X-Forwarded-Proto may be believed about
# HTTPS; without one, a client could claim it.
if env_bool("PROXY_SETS_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
