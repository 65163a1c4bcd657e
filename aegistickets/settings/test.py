"""Settings for the test suite: the shop of base.py, with fast hashing and in-memory side channels."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")

from .base import *  # noqa: E402, F403
from .base import BASE_DIR, STORAGES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The worker loop runs inside the test process in a few tests: it must not lower the whole suite's priority.
EMAIL_WORKER_NICE = 0
# Tests render pages without running collectstatic first: whitenoise finds files through the finders.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = BASE_DIR / ".pytest_cache" / "media"
# Tests read the catalog fresh unless they test the cache itself (events/tests/test_cache.py).
CATALOG_CACHE_SECONDS = 0
# Rate limits count every request from 127.0.0.1 across the whole run: off, except in the tests of the limits.
RATE_LIMITS_ENABLED = False
