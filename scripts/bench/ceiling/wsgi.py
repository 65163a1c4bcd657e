"""gunicorn serves `scripts.bench.ceiling.wsgi:application` from the project's root."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scripts.bench.ceiling.settings")

application = get_wsgi_application()
