"""Settings for the test suite: the same shop, with fast hashing and in-memory side channels."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")

from .base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The worker loop runs inside the test process in a few tests: it must not lower the whole suite's priority.
EMAIL_WORKER_NICE = 0
# Tests render pages without running collectstatic first.
STORAGES = {  # noqa: F405
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = BASE_DIR / ".pytest_cache" / "media"  # noqa: F405
# Tests never run collectstatic: whitenoise finds files through the finders instead of STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# Tests read the catalog fresh unless they test the cache itself (events/tests/test_cache.py).
CATALOG_CACHE_SECONDS = 0
# Rate limits count every request from 127.0.0.1 across the whole run: off, except in the tests of the limits.
RATE_LIMITS_ENABLED = False
