"""Settings for serving the shop (`make run`, the container image, Kubernetes): HTTPS behind a proxy, AWS storage.

Plain HTTP on localhost by default; the Helm chart sets DJANGO_SECURE_SSL_REDIRECT=true behind the ALB, which
terminates TLS and says so in X-Forwarded-Proto.
"""

from aegistickets.aws import database_from_secret, media_storage

from .base import *  # noqa: F403
from .base import AWS_REGION, CONTENT_SECURITY_POLICY, STORAGES, database, env

# --- HTTPS ----------------------------------------------------------------------------------------------------

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=SECURE_SSL_REDIRECT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS >= 31536000)

# --- database credentials from AWS ----------------------------------------------------------------------------

# Clusters without External Secrets: the credentials come from Secrets Manager at start (aegistickets/aws.py).
DATABASE_SECRET_ARN = env.str("DATABASE_SECRET_ARN", default="")
if DATABASE_SECRET_ARN:
    DATABASES = {  # noqa: F405 - replaces base's DATABASE_URL
        "default": database(database_from_secret(secret_id=DATABASE_SECRET_ARN, region_name=AWS_REGION or None))
    }

# --- uploaded media on S3 -------------------------------------------------------------------------------------

# Uploaded media (event images) in a private S3 bucket when MEDIA_BUCKET is set; local files otherwise. Credentials
# only from boto3's default chain (IRSA on EKS): no access keys in settings.
MEDIA_BUCKET = env.str("MEDIA_BUCKET", default="")
MEDIA_CUSTOM_DOMAIN = env.str("MEDIA_CUSTOM_DOMAIN", default="")
if MEDIA_BUCKET:
    STORAGES = {
        **STORAGES,
        "default": media_storage(
            bucket=MEDIA_BUCKET,
            region_name=AWS_REGION or None,
            custom_domain=MEDIA_CUSTOM_DOMAIN or None,
            url_expires=env.int("MEDIA_URL_EXPIRES", default=3600),
        ),
    }
    # Pages show event images straight from the bucket (or its CDN).
    media_hosts = (
        [f"https://{MEDIA_CUSTOM_DOMAIN}"]
        if MEDIA_CUSTOM_DOMAIN
        else [f"https://{MEDIA_BUCKET}.s3.amazonaws.com", f"https://{MEDIA_BUCKET}.s3.{AWS_REGION}.amazonaws.com"]
    )
    directives = CONTENT_SECURITY_POLICY["DIRECTIVES"]
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": {**directives, "img-src": [*directives["img-src"], *media_hosts]}}
