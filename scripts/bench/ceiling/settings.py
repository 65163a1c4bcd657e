"""Settings of the ceiling app: nothing but Django's request handling and one URLconf."""

SECRET_KEY = "framework-ceiling"  # noqa: S105 - signs nothing: no sessions, forms, cookies or middleware
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "scripts.bench.ceiling.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
