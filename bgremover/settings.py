"""Django settings for bgremover, all fed from environment variables.

Every knob has a safe default for the embedded single-machine setup (SQLite,
local media, in-process worker, in-memory channel layer). Scale-out
deployments set ``DATABASE_URL`` (or ``DB=postgres``), ``REDIS_URL`` and run
``manage.py db_worker`` (install the ``postgres`` and ``redis`` extras).
"""

from __future__ import annotations

import functools
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from bgremover import envvars

_T = TypeVar("_T")


def _improperly_configured(read: Callable[..., _T]) -> Callable[..., _T]:
    """``read`` (an envvars parser) with its ConfigError raised as Django's
    ImproperlyConfigured, the message unchanged."""

    @functools.wraps(read)
    def checked(*args: Any, **kwargs: Any) -> _T:
        try:
            return read(*args, **kwargs)
        except envvars.ConfigError as exc:
            raise ImproperlyConfigured(str(exc)) from exc

    return checked


# The parsers live in bgremover.envvars (no Django) so that bench.ours reads the engine's
# variables exactly as the app does.
envbool = envvars.envbool
envint = _improperly_configured(envvars.envint)
envlist = envvars.envlist


BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DEBUG", "False")

# Management commands that sign nothing and keep nothing (no database, no sessions, no
# cookies): without SECRET_KEY they get a random key that dies with the process, so the
# command line works on a bare checkout while the server and every other command still
# refuse to start without one. The command is argv[1] for manage.py and django-admin.
SECRETLESS_COMMANDS = frozenset({"removebg"})

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"
SECRET_KEY = os.getenv("SECRET_KEY", _DEV_SECRET_KEY)
if SECRET_KEY == _DEV_SECRET_KEY and sys.argv[1:2] and sys.argv[1] in SECRETLESS_COMMANDS:
    SECRET_KEY = secrets.token_urlsafe(50)
elif SECRET_KEY == _DEV_SECRET_KEY and not DEBUG and not envbool("ALLOW_DEV_SECRET_KEY", "False"):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 (or "
        "ALLOW_DEV_SECRET_KEY=1 on a machine nobody else can reach) to use the development key."
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

# Where the SQLite database and media files live unless overridden.
DATA_DIR = Path(os.getenv("DATA_DIR", str(BASE_DIR / "data")))
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", str(DATA_DIR / "media")))
# SQLite cannot create its file in a missing folder: a fresh checkout has no data/ yet.
DATA_DIR.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"

# Directory searched for model weights before BASE_DIR/models (see engine.weights_catalogue).
MODEL_DIR = os.getenv("BGREMOVER_MODEL_DIR", "") or None
# Model used when a job does not name one; empty means "the best one present".
DEFAULT_MODEL = os.getenv("BGREMOVER_MODEL", "") or None
# What the engine is handed for every model it loads (it never reads the environment itself):
# BGREMOVER_DEVICE (auto, cpu, cuda, cuda:1…), BGREMOVER_PRECISION (auto, fp32, bf16),
# BGREMOVER_TORCH_THREADS (None: every CPU the process may use) and BGREMOVER_WEIGHTS_URL (a
# mirror for missing weights; None: the official links). See envvars.EngineVariables.
DEVICE, PRECISION, TORCH_THREADS, WEIGHTS_URL = _improperly_configured(envvars.engine_variables)()

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Before django_tasks_db: its db_worker command is replaced by editor's (no autoreloader).
    "editor",
    "api",
    "django_tasks",
    "django_tasks_db",
]
# Daphne's app only replaces ``runserver`` with its ASGI server (websockets and the in-process
# workers need that). Loading it installs Twisted's reactor, about 0.4 s that every other command
# would pay, ``removebg`` first of all; ``make run`` starts the daphne server directly.
if sys.argv[1:2] == ["runserver"]:
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "editor.security.content_security_policy_middleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "editor.security.no_store_middleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bgremover.urls"
ASGI_APPLICATION = "bgremover.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite's own options: the in-process worker writes while requests read, so wait for the
# lock, and take it when a transaction starts (editor.quotas counts and inserts in one).
SQLITE_OPTIONS = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DATABASE_URL_FORMS = "postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH"


def database_from_url(url: str) -> dict[str, object]:
    """One DATABASES entry from ``postgres://user:password@host:port/name`` (also
    ``postgresql://``; query parameters such as ``?sslmode=require`` become libpq options; a
    percent-encoded host such as ``%2Frun%2Fpostgresql`` is a socket folder) or
    ``sqlite:///relative/path``, ``sqlite:////absolute/path``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid URL ({exc})") from None
    if parts.scheme in ("postgres", "postgresql"):
        name = unquote(parts.path.lstrip("/"))
        if not name or "/" in name:
            raise ImproperlyConfigured(
                f"DATABASE_URL must name one database, like {DATABASE_URL_FORMS}"
            )
        host = parts.netloc.rpartition("@")[2]
        host = unquote(host) if "%" in host else (parts.hostname or "")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": host,
            "PORT": str(port or ""),
            "OPTIONS": dict(parse_qsl(parts.query)),
        }
    if parts.scheme == "sqlite" and not parts.netloc and not parts.query:
        path = unquote(parts.path)[1:]  # sqlite:///data/x → data/x; sqlite:////srv/x → /srv/x
        if not path:
            raise ImproperlyConfigured(f"DATABASE_URL names no SQLite file ({DATABASE_URL_FORMS})")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": SQLITE_OPTIONS}
    shown = f"{parts.scheme}://…" if parts.scheme else "without a scheme"  # no secrets echoed
    raise ImproperlyConfigured(
        f"DATABASE_URL {shown} is not supported: use {DATABASE_URL_FORMS} "
        "(PostgreSQL needs the postgres extra: pip install 'bgremover[postgres]')"
    )


# DATABASE_URL, when set, decides (and the DB_* variables are ignored); else DB=postgres with
# DB_NAME, DB_USER, DB_PASSWORD, DB_HOST, DB_PORT; else SQLite in DATA_DIR (the default).
_DB = os.getenv("DB", "").strip().lower() or "sqlite"
if os.getenv("DATABASE_URL", "").strip():
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
elif _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.getenv("DB_NAME", "bgremover"),
            "USER": os.getenv("DB_USER", "postgres"),
            "PASSWORD": os.getenv("DB_PASSWORD", ""),
            "HOST": os.getenv("DB_HOST", ""),
            "PORT": os.getenv("DB_PORT", ""),
        }
    }
elif _DB == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.getenv("DB_NAME", str(DATA_DIR / "bgremover.sqlite3")),
            "OPTIONS": SQLITE_OPTIONS,
        }
    }
else:
    raise ImproperlyConfigured(f"DB must be sqlite or postgres, got {_DB!r}")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = envint("DB_CONN_MAX_AGE", "0")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Anonymous owners: the owner id lives in a server-side session (editor.ownership); the browser
# holds only a random, signed, HttpOnly, SameSite=Lax session key, which the server can revoke.
# Expired session rows are cleared by editor.retention's periodic maintenance.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Security headers (editor.security adds the Content-Security-Policy).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# HTTPS=1 when the site is served over HTTPS (directly or behind a TLS proxy): cookies are
# then only ever sent over HTTPS, and named with the __Host- prefix, which browsers accept
# only when Secure, with Path=/ and no Domain (Django's defaults), so that no other host or
# plain-HTTP page can plant them. Nothing in the pages reads them by name (the CSRF token
# comes from a meta tag).
HTTPS = envbool("HTTPS", "False")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
if HTTPS:
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
# Strict-Transport-Security on HTTPS responses, for HSTS_SECONDS (one year by default with
# HTTPS=1; 0 sends none). Subdomains and the preload list are opt-in: both outlive a change
# of mind by the max-age.
SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", "31536000") if HTTPS else 0
if SECURE_HSTS_SECONDS < 0:
    raise ImproperlyConfigured(f"HSTS_SECONDS must be 0 or more, got {SECURE_HSTS_SECONDS}")
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("HSTS_INCLUDE_SUBDOMAINS", "False")
SECURE_HSTS_PRELOAD = envbool("HSTS_PRELOAD", "False")
# The header a TLS proxy in front sets to "https" (e.g. X-Forwarded-Proto). Empty (default):
# no header is trusted, since a client could send it itself; set it only when the proxy
# always overwrites it. It decides request.is_secure() and the websocket origin check.
TRUST_PROXY_SCHEME_HEADER = os.getenv("TRUST_PROXY_SCHEME_HEADER", "").strip()
if TRUST_PROXY_SCHEME_HEADER:
    if not all(c.isascii() and (c.isalnum() or c == "-") for c in TRUST_PROXY_SCHEME_HEADER):
        raise ImproperlyConfigured(
            f"TRUST_PROXY_SCHEME_HEADER must be a header name, got {TRUST_PROXY_SCHEME_HEADER!r}"
        )
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + TRUST_PROXY_SCHEME_HEADER.upper().replace("-", "_"),
        "https",
    )
# HTTPS_REDIRECT=1: plain-HTTP requests are redirected to HTTPS (behind a TLS proxy, only
# with TRUST_PROXY_SCHEME_HEADER, else every request looks plain and redirects forever).
SECURE_SSL_REDIRECT = envbool("HTTPS_REDIRECT", "False")
if SECURE_SSL_REDIRECT and not HTTPS:
    raise ImproperlyConfigured("HTTPS_REDIRECT=1 needs HTTPS=1")

# Websockets (editor.consumers), counted per server process: open sockets per owner and per
# client address (see CLIENT_ADDRESS_HEADER; more are refused with close code 1013 and the
# page polls instead), and seconds after which a socket the server has sent nothing on is
# closed. 0: no limit.
WEBSOCKET_MAX_PER_OWNER = envint("WEBSOCKET_MAX_PER_OWNER", "20")
WEBSOCKET_MAX_PER_ADDRESS = envint("WEBSOCKET_MAX_PER_ADDRESS", "60")
WEBSOCKET_IDLE_TIMEOUT_S = envint("WEBSOCKET_IDLE_TIMEOUT_S", "300")
# A client that takes none of a streamed response (a ZIP) for this long is disconnected; while
# it reads slowly, the response waits for it (editor.slow_readers).
SLOW_CLIENT_TIMEOUT_S = envint("SLOW_CLIENT_TIMEOUT_S", "300", minimum=1)

REDIS_URL = os.getenv("REDIS_URL", "")
# Seconds a read from Redis may take. channels-redis waits for messages with a blocking pop of
# up to 5 s; redis-py 8 reads with a 5 s socket timeout by default, so a socket that heard
# nothing for 5 s died with TimeoutError (django/channels_redis#422). Longer than that pop,
# short enough to notice a Redis that stopped answering.
REDIS_SOCKET_TIMEOUT_S = 30
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": REDIS_SOCKET_TIMEOUT_S}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "ENQUEUE_ON_COMMIT": True,
    }
}
# Worker threads started inside the web server process (the embedded default).
# 0 means jobs only run in separate `manage.py db_worker` processes.
INPROCESS_WORKERS = envint("INPROCESS_WORKERS", str(max(1, (os.cpu_count() or 2) // 2)))

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Files appear whole or not at all (editor.storage); any Django storage works here.
    "default": {"BACKEND": "editor.storage.AtomicFileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Upload limits (enforced by editor.forms and the engine's decoder).
MAX_UPLOAD_BYTES = envint("MAX_UPLOAD_BYTES", str(25 * 1024 * 1024))
MAX_UPLOAD_PIXELS = envint("MAX_UPLOAD_PIXELS", str(50_000_000))
# The HTTP API's outbound requests (api.outbound, api.webhooks). API_IMAGE_URLS=1 lets API
# calls name an image by URL (image_url, bg_image_url), off by default. Fetches and webhooks
# only reach public addresses, on ports 80 and 443, unless the address is inside one of
# API_FETCH_ALLOWED_NETWORKS (comma-separated CIDRs, e.g. 10.1.0.0/16; then any port).
API_IMAGE_URLS = envbool("API_IMAGE_URLS", "False")
API_FETCH_MAX_REDIRECTS = envint("API_FETCH_MAX_REDIRECTS", "3")
API_FETCH_TIMEOUT_S = envint("API_FETCH_TIMEOUT_S", "15")
API_FETCH_MAX_BYTES = envint("API_FETCH_MAX_BYTES", str(MAX_UPLOAD_BYTES))
API_FETCH_ALLOWED_NETWORKS = envlist("API_FETCH_ALLOWED_NETWORKS", "")
# A job-completion webhook is tried up to this many times (back-off 10 s, 1 min, 5 min,
# 30 min, 2 h), each attempt limited to API_WEBHOOK_TIMEOUT_S seconds.
API_WEBHOOK_MAX_ATTEMPTS = envint("API_WEBHOOK_MAX_ATTEMPTS", "6")
API_WEBHOOK_TIMEOUT_S = envint("API_WEBHOOK_TIMEOUT_S", "10")
# How long originals and results are kept, in hours. 0: deleted as soon as the owner downloads
# the result, or after RETENTION_IDLE_MINUTES without a request from the owner (they left).
RETENTION_HOURS = envint("RETENTION_HOURS", "24")
RETENTION_IDLE_MINUTES = envint("RETENTION_IDLE_MINUTES", "15")
# An owner's session lasts as long as their images: each upload moves its expiry to the
# retention period from then (with RETENTION_HOURS = 0, the idle period, moved forward while
# the owner is active). Sessions are created by the first upload, never by a visit.
SESSION_COOKIE_AGE = max(
    60,
    RETENTION_HOURS * 3600 if RETENTION_HOURS > 0 else RETENTION_IDLE_MINUTES * 60,
)
# Seconds between runs of the periodic purge (expired images, stuck jobs, expired sessions)
# inside each server process; 0 turns it off (then cron `manage.py purge_expired`).
PURGE_INTERVAL_S = envint("PURGE_INTERVAL_S", "300")
# A job running longer than this many seconds ends as failed; 0: no limit.
JOB_TIME_LIMIT_S = envint("JOB_TIME_LIMIT_S", "600")
# A job's engine work runs in a child process that is killed past the time limit above or when
# its memory passes this many MB (0: no memory limit).
JOB_MEMORY_LIMIT_MB = envint("JOB_MEMORY_LIMIT_MB", "2560")
# A running job's worker writes a heartbeat every JOB_HEARTBEAT_INTERVAL_S; one silent for
# JOB_HEARTBEAT_TIMEOUT_S (its worker was killed, or the server restarted) is started again by
# a live worker, up to JOB_MAX_ATTEMPTS starts in all, then failed with a reason.
JOB_HEARTBEAT_INTERVAL_S = envint("JOB_HEARTBEAT_INTERVAL_S", "5")
JOB_HEARTBEAT_TIMEOUT_S = envint("JOB_HEARTBEAT_TIMEOUT_S", "60")
JOB_MAX_ATTEMPTS = envint("JOB_MAX_ATTEMPTS", "3")
# Heavy operations (decoding, inference, rendering) running at once in one server process;
# a request that finds them all busy waits HEAVY_WAIT_S seconds, then gets 503.
HEAVY_OPERATIONS = envint("HEAVY_OPERATIONS", str(os.cpu_count() or 2))
HEAVY_WAIT_S = envint("HEAVY_WAIT_S", "10")
# Images one ZIP download (the gallery's batch) may hold; each counts as one download
# against RATE_LIMIT_DOWNLOADS and is rendered in a heavy-operation slot of its own.
ZIP_MAX_IMAGES = envint("ZIP_MAX_IMAGES", "200")
# Images one gallery page lists: its size and cost stay the same however many one owner keeps.
GALLERY_PAGE_SIZE = envint("GALLERY_PAGE_SIZE", "60", minimum=1)
# Per-owner rate limits, "COUNT/PERIOD" (PERIOD: s, m, h or d, e.g. 10m) or "off". Counted in
# Django's cache: the default in-memory cache counts per server process.
RATE_LIMIT_UPLOADS = os.getenv("RATE_LIMIT_UPLOADS", "60/10m")
RATE_LIMIT_DOWNLOADS = os.getenv("RATE_LIMIT_DOWNLOADS", "120/10m")
# Saved touch-ups (each stroke or undo in the editor is one save).
RATE_LIMIT_EDITS = os.getenv("RATE_LIMIT_EDITS", "600/10m")
# The same limits per client address (see CLIENT_ADDRESS_HEADER), so that a script dropping
# its cookie gets no fresh allowance; everyone behind one address (an office's NAT, one IPv6
# /64) shares them. Uploads count uploads, re-runs and background uploads.
RATE_LIMIT_UPLOADS_PER_ADDRESS = os.getenv("RATE_LIMIT_UPLOADS_PER_ADDRESS", "60/10m")
RATE_LIMIT_DOWNLOADS_PER_ADDRESS = os.getenv("RATE_LIMIT_DOWNLOADS_PER_ADDRESS", "240/10m")
RATE_LIMIT_EDITS_PER_ADDRESS = os.getenv("RATE_LIMIT_EDITS_PER_ADDRESS", "1200/10m")
# Jobs waiting or running at once (editor.quotas): past the first, an owner's upload or re-run
# answers 429; past the second (everyone's together), 503. 0: no cap.
JOB_QUEUE_LIMIT_PER_OWNER = envint("JOB_QUEUE_LIMIT_PER_OWNER", "20")
JOB_QUEUE_LIMIT = envint("JOB_QUEUE_LIMIT", "200")
# Bytes that stored uploads, backgrounds and results may take, in all and per owner (jobs not
# finished yet reserve room for their results); past it, uploads answer 507. 0: no budget.
DISK_BUDGET_BYTES = envint("DISK_BUDGET_BYTES", str(20 * 1024**3))
DISK_BUDGET_PER_OWNER_BYTES = envint("DISK_BUDGET_PER_OWNER_BYTES", str(2 * 1024**3))
# The HTTP API (api): each key's images a period unless `apikey create --rate` says otherwise
# ("off": none), and how long the synchronous call waits for its image's job before answering
# 503 (the job's own time limit stops it anyway).
API_RATE_LIMIT = os.getenv("API_RATE_LIMIT", "60/1m")
API_SYNC_WAIT_S = envint("API_SYNC_WAIT_S", "300")
# Images one POST /api/v1/jobs may submit (all of them together within MAX_UPLOAD_BYTES).
API_JOBS_MAX_FILES = envint("API_JOBS_MAX_FILES", "20")
# The request header a trusted reverse proxy puts the client's address in (its last entry is
# used), e.g. X-Forwarded-For; empty: the TCP peer's address. Only set it behind such a proxy:
# otherwise clients choose their own address.
CLIENT_ADDRESS_HEADER = os.getenv("CLIENT_ADDRESS_HEADER", "").strip()

# Operating it (editor.operations): /healthz and /readyz are always on; /metrics (Prometheus)
# only with METRICS_TOKEN set, and then only for "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = os.getenv("METRICS_TOKEN", "").strip()
# ADMIN_ENABLED=1: Django's admin at /admin/ for operators (editor.admin: images, jobs and
# results read-only, with re-queue, fail and purge actions). It adds the auth app (run
# `manage.py migrate`, then `manage.py createsuperuser`); off, neither is installed.
ADMIN_ENABLED = envbool("ADMIN_ENABLED", "False")
if ADMIN_ENABLED:
    _after_contenttypes = INSTALLED_APPS.index("django.contrib.contenttypes") + 1
    INSTALLED_APPS[_after_contenttypes:_after_contenttypes] = [
        "django.contrib.auth",
        "django.contrib.admin",
    ]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    )
    TEMPLATES[0]["OPTIONS"]["context_processors"].append(
        "django.contrib.auth.context_processors.auth"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}
