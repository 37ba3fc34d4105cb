"""lbpanel settings: every value from the environment, failing fast on one we do not understand."""

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from lbcore import sipdns
from lbcore.redistarget import RedisTarget
from lbpanel.env import envbool, envint, envlist, envstr, panel_url, secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("LBPANEL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = secret_key(VAR_DIR)
DEBUG = envbool("LBPANEL_DEBUG", "false")
ALLOWED_HOSTS = envlist("LBPANEL_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("LBPANEL_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "dispatcher",
    "probes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Refuses an oversized body by its Content-Length, before anything reads it (DRF's parsers would not).
    "lbpanel.middleware.BodySizeLimitMiddleware",
    # Static files from gunicorn itself: the embedded default has no nginx in front.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A read-only or failing database: a 503 naming the problem, not a generic 500.
    "dispatcher.database_errors.DatabaseOutageMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during authentication into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "lbpanel.urls"
WSGI_APPLICATION = "lbpanel.wsgi.application"

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

try:
    DATABASES = {
        "default": dj_database_url.parse(envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lbpanel.sqlite3'}"), conn_max_age=60)
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is for trying lbpanel out; PostgreSQL is for production. Still, no 500s under load:
    # WAL lets readers and the one writer work at once, IMMEDIATE takes the write lock at BEGIN (a
    # deferred transaction that upgrades fails at once, without waiting), and `timeout` is how long
    # a writer waits for the lock before "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": envint("LBPANEL_SQLITE_TIMEOUT", 20),
    }
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envstr("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")
# Redis Sentinel: the sentinels say where the master is now (REDIS_URL then gives only the db number
# and the master's password). The panel, Celery and runproxy all follow it (README, "Redis Sentinel").
REDIS_SENTINELS = tuple(envlist("REDIS_SENTINELS", ""))
REDIS_SENTINEL_MASTER = envstr("REDIS_SENTINEL_MASTER", "")
REDIS_SENTINEL_PASSWORD = envstr("REDIS_SENTINEL_PASSWORD") or None
try:
    REDIS_TARGET = RedisTarget.build(REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD)
    REDIS_TARGET.master_options()
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Destinations by host name (RFC 3263): the prober and runproxy read SIP_DNS_* themselves; a bad
# value stops the start here rather than failing every probe round.
try:
    sipdns.nameservers(envstr("SIP_DNS_SERVERS", ""))
    sipdns.ttl_bounds()
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Counts failed logins (panel, Django admin) per user name and per address; locks out past the limit.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("LBPANEL_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LBPANEL_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "dispatcher.views.auth.locked_out"
AXES_CLIENT_IP_CALLABLE = "dispatcher.api.auth.client_address"
AXES_VERBOSE = False
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured(f"LBPANEL_LOGIN_FAILURE_LIMIT={AXES_FAILURE_LIMIT}: at least 1")

# Behind a TLS-terminating front (Caddy, nginx) that sets X-Forwarded-Proto and X-Forwarded-For.
# Only switch this on when nothing but that front can reach gunicorn: the headers are believed.
BEHIND_TLS = envbool("LBPANEL_BEHIND_TLS", "false")
if BEHIND_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = BEHIND_TLS
# Django sends HSTS only on requests that came over HTTPS, so this is inert on plain HTTP.
SECURE_HSTS_SECONDS = envint("LBPANEL_HSTS_SECONDS", 31_536_000 if BEHIND_TLS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("LBPANEL_HSTS_INCLUDE_SUBDOMAINS", "false")
X_FRAME_OPTIONS = "DENY"
# Only our own files: no inline script or style, no eval. htmx's indicator <style> is turned off in
# base.html (htmx-config) and its rules live in panel.css.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# Request bodies past this are refused with 400 before they are read (API, panel, JSON-RPC).
MAX_BODY_BYTES = envint("LBPANEL_MAX_BODY_BYTES", 2 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("LBPANEL_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Tests and runs without collectstatic still find files in the apps' and project's folders.
WHITENOISE_USE_FINDERS = True

# Celery: the broker and results on the same Redis as the routing table.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", REDIS_TARGET.celery_url())
CELERY_RESULT_BACKEND = envstr("CELERY_RESULT_BACKEND", REDIS_TARGET.celery_url())
# With Sentinel: which master the sentinel:// URLs above mean (empty without Sentinel).
CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_TARGET.celery_transport_options()
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = REDIS_TARGET.celery_transport_options()
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "false")
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_TASK_DEFAULT_QUEUE", "lbpanel")
CELERY_RESULT_EXPIRES = 3600

REST_FRAMEWORK = {
    # No HTTP Basic: a password is typed into the login page only, where it is throttled.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dispatcher.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "dispatcher.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
# /metrics answers without a token only to these addresses (a Prometheus on the same host, by default).
METRICS_ALLOWED_NETWORKS = envlist("LBPANEL_METRICS_ALLOWED", "127.0.0.1/32,::1/128")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"LBPANEL_METRICS_ALLOWED: {_network!r} is not an address or CIDR ({exc})") from exc
SPECTACULAR_SETTINGS = {
    "TITLE": "lbpanel API",
    "DESCRIPTION": """Servers, dispatcher sets, destinations, state changes and live stats of the lbpanel SIP load balancer.

Authenticate with `Authorization: Token <key>` (or `Bearer <key>`); a viewer reads, an operator also changes
admin state (of a server or of one row), an admin also changes configuration.

Beside the REST API, the panel answers on three more paths (not described operation by operation below):

| path | what | who may call it |
| --- | --- | --- |
| `POST /rpc` | Kamailio's JSON-RPC 2.0, as kamcmd sends it: `dispatcher.list`, `dispatcher.set_state` and `dispatcher.set_duid_state` (one set's row), `dispatcher.reload`, `dispatcher.ping_active` | a token (viewer); `set_state`, `set_duid_state` and `reload` need the operator role |
| `GET /metrics` | Prometheus text: per destination, per server (`lbpanel_server_active_calls{server="ast1"}`, `lbpanel_server_cps`, `lbpanel_server_drained`) and per proxy | a token, or an address in `LBPANEL_METRICS_ALLOWED` |
| `GET /healthz` | 200 when the database, Redis, the prober, a proxy and the publication are all well, else 503 naming what is not; alert channels that fail are listed under `warnings`, never a 503 | anyone: it says nothing secret |
""",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"AdminStateEnum": "dispatcher.choices.AdminState", "HealthEnum": "dispatcher.choices.HealthState"},
}

# Alerts (dispatcher/alerts): absolute links need the panel's address; e-mail goes through Django's mail settings.
PANEL_URL = panel_url()
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "false")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "lbpanel@localhost")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL: set one at most")

LOG_LEVEL = envstr("LBPANEL_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR"):
    raise ImproperlyConfigured(f"LBPANEL_LOG_LEVEL={LOG_LEVEL!r}: use DEBUG, INFO, WARNING or ERROR")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
}
