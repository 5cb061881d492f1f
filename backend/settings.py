"""Settings from the environment (12-factor) with embedded defaults.

No variables at all gives a self-contained system: SQLite, in-process cache and channel
layer, local file storage and background jobs run in-process. DATABASE_URL, REDIS_URL,
CELERY_BROKER_URL (and the S3 variables, later) switch to the real services. Every variable is
documented in docs/configuration.md.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from backend.core.storage import storage_backend_from_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Signs sessions and password-reset tokens. A guessable default would let anyone forge both,
# so without debug mode there is none: the process refuses to start instead.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string (for example the "
            'output of: python -c "import secrets; print(secrets.token_urlsafe(50))"), '
            "or set DJANGO_DEBUG=true for local development."
        )
    SECRET_KEY = "triton-insecure-development-key-for-debug-mode-only"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Browser origins allowed to open the websocket; empty means "same host as ALLOWED_HOSTS".
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", default=[])
VAR_DIR = Path(env.str("TRITON_VAR_DIR", default=str(BASE_DIR / "var")))

# --- HTTPS (all off by default; the production environment turns them on) ----------------------
# TLS ends at the proxy in front: it tells Django the original scheme in X-Forwarded-Proto.
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# ... and only from these direct peers (the proxy's address; backend/core/forwarded.py).
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=["127.0.0.0/8", "::1/128"])
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# Probes and scrapers call the process directly over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$", r"^api/v1/health$", r"^api/v1/metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)

# --- Browser security (the admin site and the /dashboard/ page; the API uses no cookies) -------
# Cookies only the admin site sets: never readable by scripts, never sent cross-site on a POST.
# Over HTTPS their names carry the __Host- prefix: a browser then refuses them unless they are
# Secure, host-only and for path /, so no sibling subdomain can plant or shadow them.
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
if SESSION_COOKIE_SECURE:
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
# Seconds an admin session lasts.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (backend/core/security_headers.py): strict for pages, "nothing" for
# every other response. Path prefixes listed here get none (a page added later that cannot live
# without inline code, until it is fixed). The API docs page serves Swagger UI locally: it fits.
CSP_EXEMPT_PATHS = env.list("CSP_EXEMPT_PATHS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "guardian",
    "django_prometheus",
    # Serves the Swagger UI's assets from /static/ninja/ instead of a CDN (works offline).
    "ninja",
    # Not a domain app: registered for its management commands (backup, restore, seed_loadtest).
    "backend.core",
    "backend.accounts",
    "backend.messaging",
    "backend.todos",
    "backend.commerce",
    "backend.content",
    "realtime",
]

MIDDLEWARE = [
    # First: nothing below may see a scheme header that did not come from the proxy.
    "backend.core.forwarded.TrustedProxySchemeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "backend.core.observability.RequestIdMiddleware",
    "backend.core.access_log.AccessLogMiddleware",
    "backend.core.db_router.RequestPinMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "backend.core.security_headers.ContentSecurityPolicyMiddleware",
    # Session, CSRF, auth and messages: left out of the chain that serves /api/ (token only,
    # no cookies; backend/core/browser_only.py).
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "api.errors.ProblemDetailsMiddleware",
    "api.content_types.JsonContentTypeMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "backend.urls"
# Threads that run requests' sync code (views, ORM), each with its own database connection.
ASGI_SYNC_THREADS = env.int("ASGI_SYNC_THREADS", default=8)
ASGI_APPLICATION = "backend.asgi.application"
WSGI_APPLICATION = "backend.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "backend" / "templates"],
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

# --- Database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'triton.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.mysql":
    # PyMySQL waits forever by default; one slow socket-path query would stall every socket
    # of the process, so bound connect/read/write.
    _db.setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            # Tables and the connection must agree, or comparisons with casts (guardian's
            # object_pk joins) fail with "Illegal mix of collations".
            "collation": env.str("DB_COLLATION", default="utf8mb4_unicode_ci"),
            "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=5),
            "read_timeout": env.int("DB_READ_TIMEOUT", default=30),
            "write_timeout": env.int("DB_WRITE_TIMEOUT", default=30),
            # PyMySQL negotiates TLS when it can and builds a fresh SSL context for every
            # connection (~15 ms of CPU, most of a request). Off by default on loopback only.
            "ssl_disabled": env.bool(
                "DB_SSL_DISABLED",
                default=_db.get("HOST", "") in ("", "127.0.0.1", "localhost", "::1"),
            ),
        }
    )
    _db.setdefault("TEST", {}).update(
        {"CHARSET": "utf8mb4", "COLLATION": _db["OPTIONS"]["collation"]}
    )
elif _db["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite creates the file but not its folder: a fresh TRITON_VAR_DIR must not break migrate.
    if _db["NAME"] and _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            # WAL with synchronous=NORMAL (SQLite's advice for WAL): a commit no longer waits
            # for an fsync of the log (~4 ms here, two or three per write request); a crash
            # of the process loses nothing, a power cut may lose the last transactions.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Requests run their sync code on ASGI_SYNC_THREADS long-lived threads (backend/core/asgi.py)
# and the sockets' on Channels' one database thread, so each thread keeps its connection
# (checked before reuse) instead of paying a connect per request.
_db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
_db["CONN_HEALTH_CHECKS"] = True
# Read replicas (docs/scaling.md): reads go to a healthy replica, writes and everything after
# a request's or job's first write go to the primary.
for _n, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[])):
    _replica = env.db_url_config(_url)
    if _replica["ENGINE"] == _db["ENGINE"] == "django.db.backends.mysql":
        _replica["OPTIONS"] = {
            **_db["OPTIONS"],
            "connect_timeout": env.int("REPLICA_CONNECT_TIMEOUT", default=1),
        }
    _replica.update(CONN_MAX_AGE=_db["CONN_MAX_AGE"], CONN_HEALTH_CHECKS=True)
    # Test databases: a replica is the primary's test database (no second test schema).
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{_n}"] = _replica
for _database in DATABASES.values():
    if _database["ENGINE"] == "django.db.backends.mysql":
        # Django's backend, but a health check that timed out fails at once instead of
        # waiting the read timeout again for a new connection (backend/core/mysql/base.py).
        _database["ENGINE"] = "backend.core.mysql"
if len(DATABASES) > 1:
    DATABASE_ROUTERS = ["backend.core.db_router.PrimaryReplicaRouter"]
# Seconds a replica may lag (Seconds_Behind_Master) and how long a health answer is kept.
REPLICA_MAX_LAG = env.float("REPLICA_MAX_LAG", default=5.0)
REPLICA_HEALTH_TTL = env.float("REPLICA_HEALTH_TTL", default=5.0)
REPLICA_CONNECT_TIMEOUT = env.int("REPLICA_CONNECT_TIMEOUT", default=1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, realtime history, broker ------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# The realtime Redis instances (channel layer, history, presence); cache and broker stay on
# REDIS_URL. With several, each topic lives on one of them, chosen by a hash of its name: the
# instance channels-redis' pub/sub layer picks for the topic's group (realtime/history.py).
REALTIME_REDIS_URLS = env.list("REALTIME_REDIS_URLS", default=[REDIS_URL] if REDIS_URL else [])
CHANNEL_LAYER_PREFIX = env.str("CHANNEL_LAYER_PREFIX", default="triton")
if REALTIME_REDIS_URLS and not REDIS_URL:
    raise ImproperlyConfigured("REALTIME_REDIS_URLS needs REDIS_URL (cache and broker) as well.")
# scripts/serve.sh starts WEB_CONCURRENCY server processes; without Redis each would keep its
# events, presence and history to itself.
if env.int("WEB_CONCURRENCY", default=1) > 1 and not REDIS_URL:
    raise ImproperlyConfigured(
        "WEB_CONCURRENCY above 1 needs REDIS_URL: processes share events there."
    )
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's, with one client per process (backend/core/cache.py).
            "BACKEND": "backend.core.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="triton"),
            "OPTIONS": {
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
                # One pool per process: Django makes a cache object per request context.
                "pool_class": "backend.core.cache.SharedConnectionPool",
            },
        }
    }
    # The pub/sub layer costs one PUBLISH per group_send whatever the number of listeners;
    # the realtime hub keeps one group membership per process and topic (see realtime/hub.py).
    # "core" (lists + a sorted set per group) is kept selectable for comparison in make bench.
    CHANNEL_LAYER = env.str("CHANNEL_LAYER", default="pubsub")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": REALTIME_REDIS_URLS, "prefix": CHANNEL_LAYER_PREFIX},
        }
        if CHANNEL_LAYER == "pubsub"
        else {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url} for url in REALTIME_REDIS_URLS],
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Realtime outbox ----------------------------------------------------------------------
# Outbox rows younger than OUTBOX_RELAY_DELAY are left to their on_commit relay by the sweeper.
# Embedded (no Redis): other processes' events reach sockets only through the server's own
# sweeper, so it runs often.
OUTBOX_RELAY_DELAY = env.int("OUTBOX_RELAY_DELAY", default=10 if REDIS_URL else 1)
OUTBOX_SWEEP_INTERVAL = env.float("OUTBOX_SWEEP_INTERVAL", default=15.0 if REDIS_URL else 2.0)

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# Without a broker the jobs run in-process, right after the commit that queued them, so the
# embedded system still sends mail and publishes the jobs' events through the in-process layer.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER",
    default=not CELERY_BROKER_URL or CELERY_BROKER_URL.startswith("memory://"),
)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="triton")
# A killed worker's acks_late job comes back after this many seconds (Redis broker). It must
# outlast any job's hard time limit and retry countdown (else a live job is delivered twice),
# and be short enough that a killed invoice render is redone well within two minutes: 60 s,
# plus at most one sweep interval (below), plus the render itself.
_visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=60)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _visibility_timeout,
    # Workers look for overdue unacked jobs every 5 s (kombu's default is 10 s x 10 calls).
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 2,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Keep the JSON LOGGING below in workers too (Celery would install its own text handler).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# SQS broker (CELERY_BROKER_URL=sqs://KEY:SECRET@ for AWS, sqs://KEY:SECRET@host:port for an
# SQS-compatible endpoint; docs/scaling.md): region and queue name prefix. Unused with Redis.
if CELERY_BROKER_URL.startswith("sqs://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "region": env.str("SQS_REGION", default="eu-west-1"),
        "queue_name_prefix": env.str("SQS_QUEUE_PREFIX", default=""),
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
        "polling_interval": env.float("SQS_POLLING_INTERVAL", default=1.0),
        "wait_time_seconds": env.int("SQS_WAIT_TIME_SECONDS", default=10),
    }
# The beat schedule is not kept here: each workers/<area>.py declares BEAT_SCHEDULE entries
# and workers/celery.py merges them.

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian anonymous user: the API answers 401 to anonymous callers instead.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
# Annotated: inferred from the literal, the entries would be dict[str, object].
AUTH_PASSWORD_VALIDATORS: list[dict[str, Any]] = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)
TOKEN_TTL = timedelta(days=env.float("TOKEN_TTL_DAYS", default=30))
# last_used_at is written at most this often per token, not on every request.
TOKEN_LAST_USED_RESOLUTION = timedelta(seconds=env.int("TOKEN_LAST_USED_RESOLUTION", default=60))
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
PASSWORD_RESET_URL = env.str(
    "PASSWORD_RESET_URL", default="http://localhost:3000/reset-password?email={email}&token={token}"
)
# Failed logins (API and admin site alike) for one email within the window before 429.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
# Login attempts (any outcome, API and admin site) from one client address: "<count>/<seconds>".
LOGIN_ADDRESS_RATE_LIMIT = env.str("LOGIN_ADDRESS_RATE_LIMIT", default="100/900")
# "<count>/<seconds>" per client address.
REGISTER_RATE_LIMIT = env.str("REGISTER_RATE_LIMIT", default="100/3600")
FORGOT_PASSWORD_RATE_LIMIT = env.str("FORGOT_PASSWORD_RATE_LIMIT", default="100/3600")
# How many reverse proxies (nginx) stand in front: picks the client address from X-Forwarded-For.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# --- Mail -------------------------------------------------------------------------------------
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Triton <no-reply@triton.local>")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# --- Files ------------------------------------------------------------------------------------
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Empty: files on local disk under MEDIA_ROOT. s3://bucket[/prefix]?region=&endpoint_url=&sse=
# selects S3 (credentials from the AWS_* variables); see backend/core/storage.py.
STORAGE_URL = env.str("STORAGE_URL", default="")
# Seconds an expiring download link (presigned S3 URL or signed local link) stays valid.
STORAGE_LINK_EXPIRY = env.int("STORAGE_LINK_EXPIRY", default=300)
# Seconds the redirect of GET /files/{id}/download stays valid (S3): enough to follow it.
FILE_DOWNLOAD_LINK_EXPIRY = env.int("FILE_DOWNLOAD_LINK_EXPIRY", default=60)
# Prefix of local-storage links ("https://api.example.com"); empty: links are host-relative paths.
STORAGE_PUBLIC_BASE_URL = env.str("STORAGE_PUBLIC_BASE_URL", default="")
# --- Backups (backend/core/backup.py, manage.py backup / restore) -------------------------------
# Where full database backups go: a folder (file:///path) or S3 (s3://bucket/prefix?sse=AES256...),
# parsed like STORAGE_URL. Keep them away from the database's own disk.
BACKUP_STORAGE_URL = env.str("BACKUP_STORAGE_URL", default=f"file://{VAR_DIR / 'backups'}")
# Backups older than this many days are deleted after each new backup (the newest always stays).
BACKUP_RETENTION_DAYS = env.int("BACKUP_RETENTION_DAYS", default=14)
# When beat runs the daily backup (UTC).
BACKUP_HOUR = env.int("BACKUP_HOUR", default=3)
BACKUP_MINUTE = env.int("BACKUP_MINUTE", default=15)
STORAGES = {
    "default": storage_backend_from_url(STORAGE_URL, link_expiry=STORAGE_LINK_EXPIRY),
    "backups": storage_backend_from_url(BACKUP_STORAGE_URL),
    # Hashed names (a changed file gets a new name, so browsers and CDNs may keep it forever)
    # and gzip copies, made by collectstatic (no brotli: it made every `make run` start spend
    # minutes compressing on a busy 2-core machine, for ~15% smaller files). Without a manifest
    # (STATIC_MANIFEST=false, e.g. tests that never run collectstatic) names stay as they are.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("STATIC_MANIFEST", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploads over this size are refused with 413 (before the body is read when Content-Length
# says so, else while it streams).
FILE_UPLOAD_MAX_BYTES = env.int("FILE_UPLOAD_MAX_BYTES", default=25 * 1024 * 1024)
# Types an upload may have, as sniffed from its content (text/plain: UTF-8 text).
FILE_UPLOAD_ALLOWED_TYPES = env.list(
    "FILE_UPLOAD_ALLOWED_TYPES",
    default=[
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "text/plain",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ],
)
# Uploads stream to a temporary file past this size instead of being held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# A CDN origin works too (https://cdn.example.com/static/): pages then link there, and the CDN
# pulls from this server's (or nginx's) /static/ path.
STATIC_URL = env.str("STATIC_URL", default="/static/")
# The dashboard page's assets; apps' own static/ folders are found as usual.
STATICFILES_DIRS = [BASE_DIR / "backend" / "static"]
# daphne serves /static/ itself when true (make run); behind nginx leave it off.
SERVE_STATIC = env.bool("SERVE_STATIC", default=True)
if SERVE_STATIC:
    # whitenoise: hashed files with a year-long immutable Cache-Control, others for a minute,
    # gzip when the client accepts it.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 2,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
# Serve straight from the apps' static folders, no collectstatic needed (development, tests).
WHITENOISE_USE_FINDERS = env.bool("STATIC_USE_FINDERS", default=DEBUG)
HEALTH_MIN_FREE_DISK_BYTES = env.int("HEALTH_MIN_FREE_DISK_BYTES", default=100 * 1024 * 1024)

# --- Realtime ---------------------------------------------------------------------------------
REALTIME_HISTORY_SIZE = env.int("REALTIME_HISTORY_SIZE", default=1000)
REALTIME_HISTORY_TTL = env.int("REALTIME_HISTORY_TTL", default=24 * 3600)
WS_AUTH_TIMEOUT = env.float("WS_AUTH_TIMEOUT", default=10.0)
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=64 * 1024)
WS_MAX_SUBSCRIPTIONS = env.int("WS_MAX_SUBSCRIPTIONS", default=100)
# Token bucket for frames a client sends: sustained rate per second and burst.
WS_RATE_PER_SECOND = env.float("WS_RATE_PER_SECOND", default=20.0)
WS_RATE_BURST = env.int("WS_RATE_BURST", default=60)
# Bytes of frames queued for one socket before it is closed as too slow (4008).
WS_SEND_QUEUE_BYTES = env.int("WS_SEND_QUEUE_BYTES", default=1024 * 1024)
# Threads per process that run sync socket frame handlers (message.send), each with its own
# database connection.
WS_FRAME_THREADS = env.int("WS_FRAME_THREADS", default=4)
PRESENCE_TTL = env.int("PRESENCE_TTL", default=60)
REALTIME_KEY_PREFIX = env.str("REALTIME_KEY_PREFIX", default="triton:rt")
# How often each server process checks that it missed no event of the topics it hosts.
REALTIME_SYNC_INTERVAL = env.float("REALTIME_SYNC_INTERVAL", default=2.0)
# How often each server process re-checks the tokens of its sockets (a safety net for a
# revocation broadcast lost while Redis was away; revocations normally close sockets at once).
REALTIME_TOKEN_RECHECK_INTERVAL = env.float("REALTIME_TOKEN_RECHECK_INTERVAL", default=30.0)
# Without a broker there is no beat: each server process sweeps the outbox itself.
REALTIME_INPROCESS_SWEEP = env.bool("REALTIME_INPROCESS_SWEEP", default=CELERY_TASK_ALWAYS_EAGER)

# --- Commerce -------------------------------------------------------------------------------
# Cached catalog pages live this long at most (any product change invalidates them at once).
CATALOG_CACHE_TTL = env.int("CATALOG_CACHE_TTL", default=300)
# Stock taken or returned by orders shows in the cached catalog within this many seconds (one
# rebuild per page per interval under a stream of orders, not one per order).
CATALOG_STOCK_MAX_AGE = env.float("CATALOG_STOCK_MAX_AGE", default=1.0)
# GET /dashboard answers from a cache refreshed by the coalesced job, at most this old.
DASHBOARD_CACHE_TTL = env.int("DASHBOARD_CACHE_TTL", default=10)
WKHTMLTOPDF_PATH = env.str("WKHTMLTOPDF_PATH", default="wkhtmltopdf")
# Soft time limit of one invoice render job (the hard one is 10 s more); both stay below
# CELERY_VISIBILITY_TIMEOUT.
INVOICE_RENDER_TIME_LIMIT = env.int("INVOICE_RENDER_TIME_LIMIT", default=30)

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: JSON lines with the request id -------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "backend.core.observability.RequestIdFilter"}},
    "formatters": {
        "json": {
            # python-json-logger's, cheaper per record (backend/core/observability.py).
            "()": "backend.core.observability.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# --- django-ninja -----------------------------------------------------------------------------
NINJA_PAGINATION_PER_PAGE = 20
NINJA_PAGINATION_MAX_LIMIT = 100

# --- Operations -------------------------------------------------------------------------------
# Seconds each /health check may take (database, cache, disk, channel layer, broker) before it
# counts as failed; the endpoint answers within about this time whatever hangs behind it.
HEALTH_CHECK_TIMEOUT = env.float("HEALTH_CHECK_TIMEOUT", default=2.0)
# /metrics answers callers from these networks (the direct peer address, never a forwarded
# header), or any caller sending "Authorization: Bearer <METRICS_BEARER_TOKEN>"; others get 404.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")

# --- Error reporting ----------------------------------------------------------------------
# Sentry (or a Sentry-protocol server) for requests, socket handlers and jobs; secrets are
# scrubbed before anything leaves (backend/core/error_reporting.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
if SENTRY_DSN:
    from backend.core.error_reporting import init_error_reporting

    init_error_reporting(SENTRY_DSN, environment=SENTRY_ENVIRONMENT)
