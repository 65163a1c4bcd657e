"""AWS glue read while settings load: database credentials from Secrets Manager, media on S3, email via SES.

No Django settings are imported here (settings/base.py calls these functions). Credentials come only from
boto3's default chain (IRSA web identity on EKS, an instance role, or the environment); boto3 itself honours
`AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`), which is how the tests point it at moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

# Keys the Terraform (and the RDS rotation functions) write into the database secret.
DATABASE_SECRET_PARTS = ("username", "password", "host", "dbname")

_SECRET_HINTS = {
    "ResourceNotFoundException": "no such secret in this region; check DATABASE_SECRET_ARN and AWS_REGION",
    "AccessDeniedException": (
        "access denied; the app's IAM role (IRSA) needs secretsmanager:GetSecretValue on this secret "
        "(and kms:Decrypt if it is encrypted with a customer-managed key)"
    ),
    "DecryptionFailure": "Secrets Manager could not decrypt it; the app's role needs kms:Decrypt on the secret's key",
}


def _secret_region(secret_id: str) -> str | None:
    """The region named in a Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None


def _secret_error(secret_id: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"DATABASE_SECRET_ARN={secret_id}: {problem}")


def database_from_secret(*, secret_id: str, region_name: str | None = None) -> dict[str, Any]:
    """Django's DATABASES["default"] from a JSON secret; any problem is an ImproperlyConfigured naming the secret.

    The secret holds `username`, `password`, `host`, `port`, `dbname` and/or `url`. The parts win over `url`
    when all are present: a rotation function updates `password` and leaves a stale `url` behind.
    """
    # Imported here: boto3 takes a quarter of a second to import, and most starts never need it.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    region = _secret_region(secret_id) or region_name or None
    try:
        client = boto3.session.Session().client("secretsmanager", region_name=region)
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        hint = _SECRET_HINTS.get(code) or (
            _SECRET_HINTS["AccessDeniedException"] if status == 403 else "Secrets Manager refused the request"
        )
        message = " ".join(str(error.get("Message", "")).split())  # one line: it ends the start-up traceback
        raise _secret_error(secret_id, f"{hint} ({code}: {message})") from None
    except BotoCoreError as exc:  # no credentials, no region, endpoint unreachable
        raise _secret_error(secret_id, f"cannot read the secret: {exc}") from None

    text = response.get("SecretString")
    if text is None:
        raise _secret_error(secret_id, "the secret holds binary data; expected a JSON string")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _secret_error(
            secret_id, "the secret is not a JSON object with username, password, host, port, dbname or url"
        )

    if all(data.get(key) for key in DATABASE_SECRET_PARTS):
        port = str(data.get("port") or 5432)
        if not port.isdigit():
            raise _secret_error(secret_id, f"the secret's port is not a number: {port!r}")
        # Encode every part: generated passwords may hold @ : / ? # % that would break the URL.
        url = "postgres://{}:{}@{}:{}/{}".format(
            quote(str(data["username"]), safe=""),
            quote(str(data["password"]), safe=""),
            data["host"],
            port,
            quote(str(data["dbname"]), safe=""),
        )
    elif data.get("url"):
        url = str(data["url"])
        if urlsplit(url).scheme not in environ.Env.DB_SCHEMES:
            raise _secret_error(secret_id, "the secret's url is not a database URL (postgres://…)")
    else:
        missing = ", ".join(key for key in DATABASE_SECRET_PARTS if not data.get(key))
        raise _secret_error(secret_id, f"the secret has no url and lacks the keys: {missing}")
    config: dict[str, Any] = environ.Env.db_url_config(url)
    return config


def media_storage(
    *, bucket: str, region_name: str | None, custom_domain: str | None, url_expires: int
) -> dict[str, Any]:
    """The STORAGES entry for uploaded media in a private S3 bucket (django-storages), with no keys in settings."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "region_name": region_name,
            # A CDN domain (e.g. CloudFront in front of the bucket) gives plain URLs; otherwise URLs are signed.
            "custom_domain": custom_domain,
            "querystring_auth": True,
            "querystring_expire": url_expires,
            "default_acl": None,  # objects stay private; the bucket policy decides
            "file_overwrite": False,  # like FileSystemStorage: a second poster.png gets a new name
        },
    }


@dataclass(frozen=True)
class EmailSettings:
    """Django's EMAIL_* settings (and django-ses' region) that EMAIL_URL decides; Django's defaults elsewhere."""

    backend: str
    host: str = "localhost"
    port: int = 25
    user: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False
    ses_region: str | None = None


def email_settings(*, url: str, default_region: str | None = None) -> EmailSettings:
    """The email settings of EMAIL_URL: `ses://` or `ses://<region>` is Amazon SES, else django-environ's URL."""
    parts = urlsplit(url)
    if parts.scheme == "ses":
        return EmailSettings(backend="django_ses.SESBackend", ses_region=parts.hostname or default_region or None)
    if parts.scheme not in environ.Env.EMAIL_SCHEMES:
        schemes = ", ".join(sorted([*environ.Env.EMAIL_SCHEMES, "ses"]))
        raise ImproperlyConfigured(f"EMAIL_URL has an unknown scheme {parts.scheme!r}; use one of: {schemes}")
    config = environ.Env.email_url_config(url)
    defaults = EmailSettings(backend=config["EMAIL_BACKEND"])
    return EmailSettings(
        backend=defaults.backend,
        host=config.get("EMAIL_HOST") or defaults.host,
        port=config.get("EMAIL_PORT") or defaults.port,
        user=config.get("EMAIL_HOST_USER") or defaults.user,
        password=config.get("EMAIL_HOST_PASSWORD") or defaults.password,
        use_tls=bool(config.get("EMAIL_USE_TLS")),
        use_ssl=bool(config.get("EMAIL_USE_SSL")),
    )
