"""Settings shared by every environment. Every value comes from the environment (django-environ).

An untracked `.env` file in the project folder is read first if it exists (`make run` writes one with a
generated secret key); real environment variables win over it.
"""

import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from aegistickets.aws import database_from_secret, email_settings, media_storage

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
ENV_FILE = Path(env.str("DJANGO_ENV_FILE", default=str(BASE_DIR / ".env")))
if ENV_FILE.is_file():
    env.read_env(ENV_FILE)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off (`make run` writes a generated one to .env)."
        )
    # A fresh key per process, never one written down here: sessions are signed cookies, and a known key would let
    # anyone forge an admin's session on a reachable debug server. Set DJANGO_SECRET_KEY (or use `make run`'s .env)
    # to keep sessions across restarts.
    SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "events",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "aegistickets.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "aegistickets.unavailable.DatabaseUnavailableMiddleware",
    "aegistickets.ratelimit.RateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aegistickets.urls"
WSGI_APPLICATION = "aegistickets.wsgi.application"

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

# Database: SQLite in the project folder unless DATABASE_URL says otherwise.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# AWS region for boto3 clients (EKS pods get AWS_REGION; boto3 by itself reads only AWS_DEFAULT_REGION).
AWS_REGION = env.str("AWS_REGION", default="") or env.str("AWS_DEFAULT_REGION", default="")
# Clusters without External Secrets: the credentials come from Secrets Manager at start (aegistickets/aws.py).
DATABASE_SECRET_ARN = env.str("DATABASE_SECRET_ARN", default="")
if DATABASE_SECRET_ARN:
    DATABASES["default"] = database_from_secret(secret_id=DATABASE_SECRET_ARN, region_name=AWS_REGION or None)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE: a write transaction takes SQLite's write lock at BEGIN, so the read-check-write of the
    # seat protocol is serialized across gunicorn workers (SQLite has no SELECT ... FOR UPDATE).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", 5))
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # No per-request "SELECT 1": a connection that died (database restart) fails one request and Django
    # closes it at the end of that request; the next request reconnects.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    # Fail fast instead of hanging (docs/reliability.md): a seat row locked by someone else for longer than
    # DATABASE_LOCK_TIMEOUT_MS, a statement running past DATABASE_STATEMENT_TIMEOUT_MS, or a session left idle
    # inside a transaction are cut off by PostgreSQL itself; the request answers 503 with Retry-After
    # (aegistickets/unavailable.py) and nothing is half-written. 0 turns a limit off (the migrate job does).
    DATABASES["default"]["OPTIONS"].setdefault(
        "options",
        " ".join(
            f"-c {parameter}={env.int(variable, default)}"
            for parameter, variable, default in (
                ("lock_timeout", "DATABASE_LOCK_TIMEOUT_MS", 3000),
                ("statement_timeout", "DATABASE_STATEMENT_TIMEOUT_MS", 15000),
                ("idle_in_transaction_session_timeout", "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60000),
            )
        ),
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed file names; whitenoise serves them with far-future cache headers.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Uploaded media (event images) in a private S3 bucket when MEDIA_BUCKET is set; local files otherwise.
# Credentials only from boto3's default chain (IRSA on EKS): no access keys in settings.
MEDIA_BUCKET = env.str("MEDIA_BUCKET", default="")
if MEDIA_BUCKET:
    STORAGES["default"] = media_storage(
        bucket=MEDIA_BUCKET,
        region_name=AWS_REGION or None,
        custom_domain=env.str("MEDIA_CUSTOM_DOMAIN", default="") or None,
        url_expires=env.int("MEDIA_URL_EXPIRES", default=3600),
    )

# Email: EMAIL_URL is consolemail:// (default), smtp+tls://user:password@host:587, … or ses:// (Amazon SES,
# region from ses://<region> or AWS_REGION; credentials from boto3's default chain).
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://")
globals().update(email_settings(url=EMAIL_URL, default_region=AWS_REGION or None))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AegisTickets <tickets@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Absolute links in emails (the private order page): where shoppers reach the shop, scheme included.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# A mail server that stops answering fails the send after this many seconds (Django's default: wait forever).
globals().setdefault("EMAIL_TIMEOUT", env.int("EMAIL_TIMEOUT", default=20))
# The email outbox (orders/outbox.py): buyer emails are queued with the order and sent by `manage.py send_emails`,
# which looks for due emails every EMAIL_OUTBOX_POLL_SECONDS and gives up on one after EMAIL_OUTBOX_MAX_ATTEMPTS
# (30 s after the first failure, doubling up to 1 h: about 3 hours with the default; staff can retry it then).
EMAIL_OUTBOX_POLL_SECONDS = env.float("EMAIL_OUTBOX_POLL_SECONDS", default=2.0)
EMAIL_OUTBOX_MAX_ATTEMPTS = env.int("EMAIL_OUTBOX_MAX_ATTEMPTS", default=10)
# A claimed email is left to its worker this long; a worker that died (or lost the database) mid-send has its
# emails sent again after it. Longer than building and sending one email can take (EMAIL_TIMEOUT and more).
EMAIL_OUTBOX_CLAIM_SECONDS = env.int("EMAIL_OUTBOX_CLAIM_SECONDS", default=600)
# The worker's CPU priority (Unix nice, 0-19). On a box it shares with the web workers (`make run`, one VM) web
# requests come first: in an on-sale rush the confirmations wait a few seconds, the checkouts do not wait for
# them (docs/performance.md). A worker alone in its container is unaffected: nice ranks processes of one cgroup.
EMAIL_WORKER_NICE = env.int("EMAIL_WORKER_NICE", default=19)
if not 0 <= EMAIL_WORKER_NICE <= 19:
    raise ImproperlyConfigured("EMAIL_WORKER_NICE must be between 0 and 19.")
if EMAIL_OUTBOX_POLL_SECONDS <= 0 or EMAIL_OUTBOX_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("EMAIL_OUTBOX_POLL_SECONDS must be positive and EMAIL_OUTBOX_MAX_ATTEMPTS at least 1.")
if globals()["EMAIL_TIMEOUT"] >= EMAIL_OUTBOX_CLAIM_SECONDS:
    raise ImproperlyConfigured("EMAIL_OUTBOX_CLAIM_SECONDS must be longer than EMAIL_TIMEOUT.")

# Security. Plain HTTP on localhost by default; the Helm chart sets DJANGO_SECURE_SSL_REDIRECT=true
# behind the ALB, which terminates TLS and tells us so in X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS >= 31536000)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
# Content-Security-Policy (aegistickets/csp.py): scripts, styles, fonts and fetches from our own origin only,
# no inline script or style ('unsafe-inline' nowhere). Two third-party pages ship one fixed inline <style> block
# each: only that exact block is allowed, by hash, under their own path (tests pin the hashes to the templates).
_CSP_MEDIA_HOSTS = (
    [f"https://{env.str('MEDIA_CUSTOM_DOMAIN', default='')}"]
    if env.str("MEDIA_CUSTOM_DOMAIN", default="")
    else [f"https://{MEDIA_BUCKET}.s3.amazonaws.com", f"https://{MEDIA_BUCKET}.s3.{AWS_REGION}.amazonaws.com"]
    if MEDIA_BUCKET
    else []
)
CSP_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:", *_CSP_MEDIA_HOSTS],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
CSP_EXTRA_SOURCES_BY_PATH = {
    # drf_spectacular/swagger_ui.html's <style> (the Swagger UI script itself is a separate file: SplitView)
    "/api/docs/": {"style-src": ["'sha256-MMpT0iDxyjALd9PdfepImGX3DBfJPXZ4IlDWdPAgtn0='"]},
    # admin/change_list.html's <style> for lists without actions
    "/admin/": {"style-src": ["'sha256-blvLUW3UscWqsXGByNOqdBboM+ShWAuugp2mC/wbafU='"]},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # No `?format=` override: nothing uses it (`Accept` negotiates, the CSV exports say CSV in their path), and on it
    # answered `?format=xml` with a 404 and put an undocumentable `format` parameter on every multi-renderer view.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "aegistickets.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # The organizer API is rate limited per staff user (aegistickets/ratelimit.py); public views pass through.
    "DEFAULT_THROTTLE_CLASSES": ["aegistickets.ratelimit.OrganizerThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AegisTickets API",
    "DESCRIPTION": (
        "Public catalog, basket and checkout; organizer endpoints with token authentication. "
        "Errors are application/problem+json (RFC 9457) with a stable `code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files: no CDN, works offline and under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "aegistickets.api.document_server_limits",
    ],
}

# The shop.
CURRENCY = env.str("CURRENCY", default="EUR")
HOLD_MINUTES = env.int("HOLD_MINUTES", default=10)
if HOLD_MINUTES < 1:
    raise ImproperlyConfigured("HOLD_MINUTES must be at least 1.")
# Payment methods shoppers may choose. `test` approves every payment except the documented decline
# address; `free` takes only zero totals. A real provider is added to orders/payments.py and named here.
PAYMENT_METHODS = env.list("PAYMENT_METHODS", default=["test", "free"])
EVENTS_PAGE_SIZE = env.int("EVENTS_PAGE_SIZE", default=20)
# How old availability on listings may be (events/cache.py). 0 turns the catalog cache off.
CATALOG_CACHE_SECONDS = env.float("CATALOG_CACHE_SECONDS", default=2.0)

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    # Per process on purpose: a catalog hit must cost no network round trip.
    "catalog": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "catalog",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
}

# The session holds only the basket token: a signed cookie keeps pages free of session queries and
# the pods stateless. Signed, not encrypted: the token is the shopper's own.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Each 4xx (a sold-out 409, a bad request) is already in the access log; as a WARNING per request
        # it floods the log in an on-sale rush. 5xx stay ERROR.
        "django.request": {"level": env.str("DJANGO_REQUEST_LOG_LEVEL", default="ERROR").upper()},
    },
}

# Observability (aegistickets/metrics.py, docs/slos.md). /metrics is answered by the first middleware, for
# peers inside METRICS_ALLOWED_NETWORKS only and never through a proxy (X-Forwarded-For refused): the ALB
# itself connects from a private address. Default: loopback, RFC 1918, CGNAT (EKS custom pod networking)
# and IPv6 unique-local ranges, i.e. the cluster's own addresses, never the internet.
METRICS_PATH = "/metrics"
METRICS_ALLOWED_NETWORKS = env.list(
    "METRICS_ALLOWED_NETWORKS",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
)
# Probes and scrapes are not traffic: they never enter the request metrics the SLIs are computed from.
METRICS_UNTRACKED_PATHS = frozenset({"/healthz", "/readyz", METRICS_PATH})
# Scrape-time database gauges (seats, holds, connections) are read at most this often per process.
METRICS_DB_CACHE_SECONDS = env.float("METRICS_DB_CACHE_SECONDS", default=5.0)
# Latency histogram buckets for the 800 ms p95 SLO: fine steps from 25 ms to 2 s, 0.8 s itself a bound.
PROMETHEUS_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 2.0, 2.5, 5.0, 10.0, float("inf"),
)  # fmt: skip
MIDDLEWARE = [
    "aegistickets.metrics.MetricsEndpointMiddleware",
    "aegistickets.metrics.PrometheusBeforeMiddleware",
    *MIDDLEWARE,
    "aegistickets.metrics.PrometheusAfterMiddleware",
]
# Query counts and durations per database (django_db_*): django-prometheus' wrappers of the same backends, with
# their labelled children bound once (aegistickets/db_backends).
DATABASES["default"]["ENGINE"] = {
    "django.db.backends.postgresql": "aegistickets.db_backends.postgresql",
    "django.db.backends.sqlite3": "aegistickets.db_backends.sqlite3",
}.get(DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"])
# A view that raises, for the end-to-end monitoring check (`make monitoring-check`) only: off by default.
FAULT_INJECTION_ENABLED = env.bool("FAULT_INJECTION_ENABLED", default=False)

# Abuse limits (aegistickets/ratelimit.py, docs/security.md): fixed windows counted in the "ratelimit" cache,
# shared by every worker and pod through Redis when REDIS_URL is set (process-local memory otherwise).
# RATE_LIMITS_ENABLED=false turns them off for load tests and benchmarks sent from one address.
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)
RATE_LIMITS = {
    scope: env.str(f"RATE_LIMIT_{scope.upper()}", default=default)
    for scope, default in {
        "basket_add_ip": "120/min",
        "basket_add_basket": "60/min",
        "checkout_ip": "30/min",
        "checkout_basket": "10/min",
        "organizer": "600/min",
    }.items()
}
# X-Forwarded-For is believed only across this many proxies in front of the app (the ALB: 1); 0 = the peer address.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
if TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_HOPS must be 0 or more.")
REDIS_URL = env.str("REDIS_URL", default="")
RATE_LIMIT_CACHE = "ratelimit"
CACHES[RATE_LIMIT_CACHE] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "aegistickets",
        # Short timeouts: a slow Redis must not slow checkout (the limiter fails open).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": RATE_LIMIT_CACHE}
)
# Django admin brute-force lockout (aegistickets/lockout.py), counted in the same shared cache.
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5)  # per username and client address
ADMIN_LOGIN_MAX_FAILURES_PER_IP = env.int("ADMIN_LOGIN_MAX_FAILURES_PER_IP", default=20)  # any usernames
ADMIN_LOGIN_LOCKOUT_SECONDS = env.int("ADMIN_LOGIN_LOCKOUT_SECONDS", default=900)
