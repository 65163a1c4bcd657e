"""Settings shared by every environment; `production.py` and `test.py` build on them.

Every value comes from the environment (django-environ). An untracked `.env` file in the project folder is read
first if it exists (`make run` writes one with a generated secret key); real environment variables win over it.
"""

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from aegistickets.aws import email_settings

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
    # anyone forge an admin's session on a reachable debug server.
    SECRET_KEY = secrets.token_urlsafe(50)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin with our own site: its views carry the CSP hash of the one inline <style> the admin ships.
    "aegistickets.apps.ShopAdminConfig",
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
    "axes",
    "aegistickets.apps.PlatformConfig",
    "events",
    "orders",
]

MIDDLEWARE = [
    # Probes and scrapes first: no host check or HTTPS redirect (load balancers and Prometheus call a pod by its
    # address, over plain HTTP), and never counted as traffic by the metrics below.
    "aegistickets.probes.ProbeMiddleware",
    "aegistickets.metrics.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "aegistickets.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After the session (the language may come from it), before CommonMiddleware and every view: each page,
    # email queued and problem JSON of the request speaks the visitor's language (cookie, else Accept-Language).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "aegistickets.unavailable.DatabaseUnavailableMiddleware",
    "axes.middleware.AxesMiddleware",
    "aegistickets.metrics.PrometheusAfterMiddleware",
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
                "django.template.context_processors.i18n",
            ],
            # Every template translates and writes prices: {% translate %}, {% blocktranslate %} and |money with
            # no {% load %} line in each file.
            "builtins": ["django.templatetags.i18n", "aegistickets.templatetags.money"],
        },
    },
]

# --- database -------------------------------------------------------------------------------------------------

# django-prometheus' wrappers of Django's backends: query counts and durations per database (django_db_*).
DATABASE_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def database(config: dict[str, Any]) -> dict[str, Any]:
    """A DATABASES entry from a parsed database URL: the metrics backend, and the options each engine needs."""
    engine = config["ENGINE"]
    if engine not in DATABASE_ENGINES:
        raise ImproperlyConfigured(f"DATABASE_URL: use PostgreSQL or SQLite, not {engine}.")
    config = {**config, "ENGINE": DATABASE_ENGINES[engine]}
    if engine == "django.db.backends.sqlite3":
        # IMMEDIATE: a write transaction takes SQLite's write lock at BEGIN, so the read-check-write of the seat
        # protocol is serialized across gunicorn workers (SQLite has no SELECT ... FOR UPDATE).
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        return config
    options = config.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
    # Fail fast instead of hanging (docs/reliability.md): a seat row locked by someone else for longer than
    # DATABASE_LOCK_TIMEOUT_MS, a statement running past DATABASE_STATEMENT_TIMEOUT_MS, or a session left idle
    # inside a transaction are cut off by PostgreSQL itself; the request answers 503 with Retry-After
    # (aegistickets/unavailable.py) and nothing is half-written. 0 turns a limit off (the migrate job does).
    timeouts = (
        ("lock_timeout", "DATABASE_LOCK_TIMEOUT_MS", 3000),
        ("statement_timeout", "DATABASE_STATEMENT_TIMEOUT_MS", 15000),
        ("idle_in_transaction_session_timeout", "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60000),
    )
    options.setdefault("options", " ".join(f"-c {name}={env.int(var, default=ms)}" for name, var, ms in timeouts))
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # No per-request "SELECT 1": a connection that died (database restart) fails one request and Django closes it
    # at the end of that request; the next request reconnects.
    config["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    return config


# SQLite in the project folder unless DATABASE_URL says otherwise (production.py may read it from AWS instead).
DATABASES = {"default": database(env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- caches ---------------------------------------------------------------------------------------------------

REDIS_URL = env.str("REDIS_URL", default="")
RATELIMIT_CACHE_TABLE = "aegistickets_cache"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
    # Per process on purpose: a catalog hit must cost no network round trip (events/cache.py).
    "catalog": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "catalog",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
    # Abuse counters (rate limits) must be shared by every worker and pod, or each would count alone: Redis when
    # REDIS_URL is set, else a table in the shop's own database (created by the migrations), so the default
    # install is protected too. Short Redis timeouts: a slow Redis must not slow checkout (the limiter fails open).
    "ratelimit": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "aegistickets",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": RATELIMIT_CACHE_TABLE}
    ),
}
# The session holds only the basket token: a signed cookie keeps pages free of session queries and the pods
# stateless. Signed, not encrypted: the token is the shopper's own.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"

# --- authentication -------------------------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out client before any password is checked, on every login form
    # (the admin's, the check-in desk's), since they all go through authenticate().
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login lockout (django-axes, docs/security.md): LOGIN_MAX_FAILURES failed logins from one client address, whatever
# the usernames, lock that address out of every login form for LOGIN_LOCKOUT_SECONDS, the right password included.
# Counted in the database, so every worker and pod sees the same count.
AXES_FAILURE_LIMIT = env.int("LOGIN_MAX_FAILURES", default=10)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=900))
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "aegistickets.http.client_ip"
AXES_LOCKOUT_CALLABLE = "aegistickets.views.login_locked_out"
# X-Forwarded-For is believed only across this many proxies in front of the app (the ALB: 1); 0 = the peer address.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
if TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_HOPS must be 0 or more.")

# --- languages, time, files -----------------------------------------------------------------------------------

LANGUAGE_CODE = "en"
# English and German throughout (pages, emails, the tickets PDF, problem JSON `detail`). The visitor's choice is the
# language cookie set by the switcher (django.views.i18n.set_language), else Accept-Language; URLs carry no prefix.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
# The catalogs in the repository (locale/<lang>/LC_MESSAGES/django.po), compiled to .mo by `make catalogs`.
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our own date and number formats per language (aegistickets/formats/<lang>/formats.py) over Django's.
FORMAT_MODULE_PATH = ["aegistickets.formats"]
LANGUAGE_COOKIE_NAME = "aegis_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_HTTPONLY = True
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

# --- email ----------------------------------------------------------------------------------------------------

# EMAIL_URL: consolemail:// (default), smtp+tls://user:password@host:587, … or ses:// (Amazon SES, region from
# ses://<region> or AWS_REGION; credentials from boto3's default chain).
AWS_REGION = env.str("AWS_REGION", default="") or env.str("AWS_DEFAULT_REGION", default="")
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://")
email_config = email_settings(url=EMAIL_URL, default_region=AWS_REGION or None)
EMAIL_BACKEND = email_config.backend
EMAIL_HOST = email_config.host
EMAIL_PORT = email_config.port
EMAIL_HOST_USER = email_config.user
EMAIL_HOST_PASSWORD = email_config.password
EMAIL_USE_TLS = email_config.use_tls
EMAIL_USE_SSL = email_config.use_ssl
AWS_SES_REGION_NAME = email_config.ses_region
# None: boto3 resolves the regional endpoint itself and honours AWS_ENDPOINT_URL(_SES).
AWS_SES_REGION_ENDPOINT_URL = None
# No per-process throttle: it cannot see the other pods' sends, and costs a GetSendQuota call.
AWS_SES_AUTO_THROTTLE = None
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="AegisTickets <tickets@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Absolute links in emails (the private order page): where shoppers reach the shop, scheme included.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# A mail server that stops answering fails the send after this many seconds (Django's default: wait forever).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
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
# them. A worker alone in its container is unaffected: nice ranks processes of one cgroup.
EMAIL_WORKER_NICE = env.int("EMAIL_WORKER_NICE", default=19)
if not 0 <= EMAIL_WORKER_NICE <= 19:
    raise ImproperlyConfigured("EMAIL_WORKER_NICE must be between 0 and 19.")
if EMAIL_OUTBOX_POLL_SECONDS <= 0 or EMAIL_OUTBOX_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured("EMAIL_OUTBOX_POLL_SECONDS must be positive and EMAIL_OUTBOX_MAX_ATTEMPTS at least 1.")
if EMAIL_TIMEOUT >= EMAIL_OUTBOX_CLAIM_SECONDS:
    raise ImproperlyConfigured("EMAIL_OUTBOX_CLAIM_SECONDS must be longer than EMAIL_TIMEOUT.")

# --- security headers (production.py adds HTTPS) --------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
# Content-Security-Policy (django-csp): scripts, styles, fonts and fetches from our own origin only, no inline
# script or style ('unsafe-inline' nowhere). The two third-party pages that ship one fixed inline <style> block (the
# API docs, the admin's change lists) allow exactly that block, by hash, on their own views (aegistickets/urls.py,
# aegistickets/admin.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- API ------------------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # No `?format=` override: `Accept` negotiates, the CSV exports say CSV in their path, and the override would put
    # an undocumentable `format` parameter on every view with more than one renderer.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "aegistickets.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # The organizer API is rate limited per staff user (aegistickets/throttling.py); public views pass through.
    "DEFAULT_THROTTLE_CLASSES": ["aegistickets.throttling.OrganizerRateThrottle"],
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
    # An order's and a payment's `status` are different choice sets: each its own named schema component.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "orders.models.Order.Status",
        "PaymentStatusEnum": "orders.models.Payment.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "aegistickets.api.document_server_limits",
    ],
}

# --- the shop -------------------------------------------------------------------------------------------------

CURRENCY = env.str("CURRENCY", default="EUR")
HOLD_MINUTES = env.int("HOLD_MINUTES", default=10)
if HOLD_MINUTES < 1:
    raise ImproperlyConfigured("HOLD_MINUTES must be at least 1.")
# Payment providers installed (orders/payments.py: each a class with the provider interface), and the methods
# shoppers may choose among them. `test` approves every payment except the documented decline address; `free` takes
# only zero totals; `stripe` needs the STRIPE_* keys (docs/payments.md).
PAYMENT_PROVIDERS = env.list(
    "PAYMENT_PROVIDERS",
    default=[
        "orders.payments.TestPaymentProvider",
        "orders.payments.FreePaymentProvider",
        "orders.stripe_provider.StripePaymentProvider",
    ],
)
PAYMENT_METHODS = env.list("PAYMENT_METHODS", default=["test", "free"])
# How long a pending order's seats stay taken while the buyer pays (card entry, 3-D Secure).
PAYMENT_MINUTES = env.int("PAYMENT_MINUTES", default=15)
if PAYMENT_MINUTES < 1:
    raise ImproperlyConfigured("PAYMENT_MINUTES must be at least 1.")
# How long freed seats offered to the next shopper on a waiting list stay theirs before passing to the one after,
# and how long a place in line waits for its owner to confirm it by the emailed link.
WAITING_LIST_OFFER_MINUTES = env.int("WAITING_LIST_OFFER_MINUTES", default=30)
if WAITING_LIST_OFFER_MINUTES < 1:
    raise ImproperlyConfigured("WAITING_LIST_OFFER_MINUTES must be at least 1.")
WAITING_LIST_CONFIRM_HOURS = env.int("WAITING_LIST_CONFIRM_HOURS", default=48)
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Where the SDK sends its calls: Stripe's own API unless a Stripe-compatible server stands in (the tests' localstripe).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# Where the checkout page loads stripe.js from; with localstripe, its fake at <STRIPE_API_BASE>/js.stripe.com/v3/.
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="https://js.stripe.com/v3/")
# Seconds the SDK waits for Stripe before the checkout answers a retryable 503.
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
if "stripe" in PAYMENT_METHODS and not (STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "PAYMENT_METHODS offers stripe: set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET."
    )
# Where the tickets PDF finds its fonts (orders/tickets.py): DejaVu Sans, and Droid Sans Fallback for CJK names.
TICKET_FONTS_DIR = env.str("TICKET_FONTS_DIR", default="/usr/share/fonts/truetype")
EVENTS_PAGE_SIZE = env.int("EVENTS_PAGE_SIZE", default=20)
# How old availability on listings may be (events/cache.py). 0 turns the catalog cache off.
CATALOG_CACHE_SECONDS = env.float("CATALOG_CACHE_SECONDS", default=2.0)

# Abuse limits (django-ratelimit for basket and checkout, DRF throttling for the organizer API; docs/security.md),
# counted in the shared "ratelimit" cache. RATE_LIMITS_ENABLED=false turns them off for load tests and benchmarks
# sent from one address.
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)
RATELIMIT_USE_CACHE = "ratelimit"
RATELIMIT_IP_META_KEY = "aegistickets.http.client_ip"
RATE_LIMITS = {
    scope: env.str(f"RATE_LIMIT_{scope.upper()}", default=default)
    for scope, default in {
        "basket_add_ip": "120/m",
        "basket_add_basket": "60/m",
        "checkout_ip": "30/m",
        "checkout_basket": "10/m",
        "voucher_ip": "20/m",
        "waiting_list_ip": "20/h",
        "waiting_list_email": "5/h",
        "lookup_email": "3/h",
        "lookup_ip": "10/h",
        "resend_order": "3/h",
        "resend_ip": "10/h",
        "organizer": "600/m",
    }.items()
}

# --- logging and metrics --------------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO").upper()},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Each 4xx (a sold-out 409, a bad request) is already in the access log; as a WARNING per request it floods
        # the log in an on-sale rush. 5xx stay ERROR.
        "django.request": {"level": env.str("DJANGO_REQUEST_LOG_LEVEL", default="ERROR").upper()},
        # fpdf2 subsets the tickets PDF's fonts with fontTools, which logs every glyph table at INFO.
        "fontTools": {"level": "WARNING"},
    },
}

# Observability (aegistickets/metrics.py, docs/slos.md). /metrics is served to peers inside METRICS_ALLOWED_NETWORKS
# only and never through a proxy (X-Forwarded-For refused): the ALB itself connects from a private address.
# Default: loopback, RFC 1918, CGNAT (EKS custom pod networking) and IPv6 unique-local ranges, i.e. the cluster's own
# addresses, never the internet.
METRICS_PATH = "/metrics"
METRICS_ALLOWED_NETWORKS = env.list(
    "METRICS_ALLOWED_NETWORKS",
    default=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"],
)
# Scrape-time database gauges (seats, holds, connections) are read at most this often per process.
METRICS_DB_CACHE_SECONDS = env.float("METRICS_DB_CACHE_SECONDS", default=5.0)
# A Prometheus Pushgateway (http://host:9091) that batch commands push their runs to: `reconcile_payments` runs as a
# CronJob, gone before any scrape. Empty: nothing is pushed (the run's outcome is in its output and exit code).
METRICS_PUSHGATEWAY_URL = env.str("METRICS_PUSHGATEWAY_URL", default="")
# Latency histogram buckets for the 800 ms p95 SLO: fine steps from 25 ms to 2 s, 0.8 s itself a bound.
PROMETHEUS_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 2.0, 2.5, 5.0, 10.0, float("inf"),
)  # fmt: skip
# A view that raises, for the end-to-end monitoring check (`make monitoring-check`) only: off by default.
FAULT_INJECTION_ENABLED = env.bool("FAULT_INJECTION_ENABLED", default=False)
