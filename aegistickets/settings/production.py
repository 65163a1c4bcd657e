"""Settings for serving the shop: `make run`, the container image and Kubernetes."""

from .base import *  # noqa: F403

# Behind the ALB the session cookie must be Secure; base.py ties that to DJANGO_SECURE_SSL_REDIRECT.
