"""Settings of the ceiling app: nothing but Django's request handling and one URLconf."""

import secrets

SECRET_KEY = secrets.token_urlsafe(50)  # Django requires one; nothing here signs anything (no sessions, no forms)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "scripts.bench.ceiling.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
