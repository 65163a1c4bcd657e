"""WSGI entry point: gunicorn serves `aegistickets.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aegistickets.settings.production")

application = get_wsgi_application()
