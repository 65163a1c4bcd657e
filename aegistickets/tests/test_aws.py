"""The app on AWS, against moto's server on 127.0.0.1: media on S3, email through SES, the database secret.

boto3 is pointed at moto the way an operator would point it anywhere: `AWS_ENDPOINT_URL` in the environment
(honoured by boto3 itself), dummy credentials only here. Settings wiring is checked in a fresh process
(production settings read from the environment), so the code path is the one a pod runs.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, default_storage
from django.urls import resolve
from moto.server import ThreadedMotoServer

from aegistickets.aws import database_from_secret, email_settings

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-central-1"
STRONG_KEY = "k" * 20 + "-Zq8vX2nLr5Tw9Ys3Bd7Hf1Jm4Pc6Ga0Ue"
PASSWORD = "p@ss:w/rd?"  # every character that breaks a naive postgres:// URL
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1d6b3a00000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def aws_env(moto_endpoint: str) -> Iterator[dict[str, str]]:
    """Environment that sends boto3's default chain to moto, in this process and in the child ones."""
    values = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        for name, value in values.items():
            patch.setenv(name, value)
        yield values


def client(service: str, region: str = REGION) -> Any:
    """A boto3 client for setting moto up, with the test credentials (cached: clients are slow to build)."""
    return _client(service, region, os.environ["AWS_ENDPOINT_URL"])


@functools.cache
def _client(service: str, region: str, endpoint: str) -> Any:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client(service, region_name=region, endpoint_url=endpoint)


def moto_get(endpoint: str, path: str) -> bytes:
    with urllib.request.urlopen(endpoint + path, timeout=10) as response:  # noqa: S310 - moto on 127.0.0.1
        return response.read()


def moto_post(endpoint: str, path: str, body: bytes) -> None:
    # Not form-encoded: moto reads the raw body.
    request = urllib.request.Request(  # noqa: S310 - moto on 127.0.0.1
        endpoint + path, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - moto on 127.0.0.1
        pass


def django_run(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh Python with the production settings, configured by `env` only."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "AWS_", "EMAIL_", "MEDIA_", "DEFAULT_FROM_EMAIL"))
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
            "DJANGO_ENV_FILE": "/nonexistent",
            "DJANGO_SECRET_KEY": STRONG_KEY,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_secret(name: str, value: str | dict[str, Any], region: str = REGION) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return client("secretsmanager", region).create_secret(Name=name, SecretString=text)["ARN"]


SECRET_PARTS = {
    "username": "shop",
    "password": PASSWORD,
    "host": "shop.abc123.eu-west-1.rds.amazonaws.com",
    "port": 5432,
    "dbname": "aegistickets",
    # Stale after a rotation: the parts win.
    "url": "postgres://shop:old@shop.abc123.eu-west-1.rds.amazonaws.com:5432/aegistickets",
}
POSTGRESQL = "django.db.backends.postgresql"
EXPECTED_DATABASE = {
    "NAME": "aegistickets",
    "USER": "shop",
    "PASSWORD": PASSWORD,
    "HOST": "shop.abc123.eu-west-1.rds.amazonaws.com",
    "PORT": 5432,
}

# What a pod does with every AWS feature on: upload an event image (twice, same name), send two emails, and
# report its settings. One process, because each start of Django costs a second or more.
POD = """
import json, sys
from pathlib import Path

import django

django.setup()
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.urls import Resolver404, resolve
from events.models import Event

out = {"storage": settings.STORAGES["default"]["BACKEND"], "email": settings.EMAIL_BACKEND,
       "ses_region": settings.AWS_SES_REGION_NAME, "database": settings.DATABASES["default"]}
field = Event._meta.get_field("image")  # the storage event images are uploaded to
image = Path(sys.argv[1]).read_bytes()
names = [field.storage.save(field.generate_filename(None, "poster.png"), ContentFile(image)) for _ in range(2)]
out["images"] = [{"name": name, "url": field.storage.url(name)} for name in names]
try:
    resolve("/media/" + names[0])
    out["media_served_locally"] = True
except Resolver404:
    out["media_served_locally"] = False
try:
    send_mail("Spoofed", "Not from us", "someone@unverified.example", ["ada@example.com"])
except Exception as exc:  # SES refuses senders that are not verified identities
    out["unverified_sender"] = type(exc).__name__
out["sent"] = send_mail("Your tickets for Jazz Night", "Order ABC123", None, ["ada@example.com"])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def pod(aws_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The app started as on EKS: media bucket, SES and database secret, all from the environment."""
    # What the Terraform creates.
    client("s3").create_bucket(Bucket="shop-media", CreateBucketConfiguration={"LocationConstraint": REGION})
    client("ses").verify_domain_identity(Domain="shop.example")
    arn = create_secret("aegistickets/dev/db", SECRET_PARTS)
    poster = tmp_path_factory.mktemp("pod") / "poster.png"
    poster.write_bytes(PNG)

    result = django_run(
        POD,
        str(poster),
        **aws_env,
        MEDIA_BUCKET="shop-media",
        MEDIA_URL_EXPIRES="600",
        EMAIL_URL="ses://",
        DEFAULT_FROM_EMAIL="AegisTickets <tickets@shop.example>",
        DATABASE_SECRET_ARN=arn,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- Media -------------------------------------------------------------------------------------------------


def test_event_images_go_to_s3_and_their_signed_url_serves_them(pod, aws_env):
    assert pod["storage"] == "storages.backends.s3.S3Storage"
    image = pod["images"][0]
    assert image["name"].startswith("events/poster")
    stored = client("s3").get_object(Bucket="shop-media", Key=image["name"])
    assert stored["Body"].read() == PNG
    assert stored["ContentType"] == "image/png"
    # Private bucket: the URL is presigned (SigV4, the configured lifetime), and it fetches the image.
    assert image["url"].startswith(f"{aws_env['AWS_ENDPOINT_URL']}/shop-media/{image['name']}?")
    assert "X-Amz-Signature=" in image["url"]
    assert "X-Amz-Expires=600" in image["url"]
    assert moto_get(image["url"], "") == PNG
    # S3 serves media, so the app does not (aegistickets/urls.py).
    assert pod["media_served_locally"] is False


def test_a_second_upload_with_the_same_name_does_not_overwrite_the_first(pod):
    first, second = (image["name"] for image in pod["images"])
    assert first != second
    keys = {o["Key"] for o in client("s3").list_objects_v2(Bucket="shop-media")["Contents"]}
    assert keys == {first, second}


def test_media_urls_are_plain_behind_a_cdn_domain(aws_env):
    code = "from django.core.files.storage import default_storage\nprint(default_storage.url('events/poster.png'))"

    result = django_run(code, **aws_env, MEDIA_BUCKET="shop-media", MEDIA_CUSTOM_DOMAIN="media.example.com")

    assert result.returncode == 0, result.stderr
    # The CDN reads the private bucket; its URLs are never signed by the app.
    assert result.stdout.strip().splitlines()[-1] == "https://media.example.com/events/poster.png"


def test_media_are_local_files_served_by_the_app_by_default():
    assert settings.STORAGES["default"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert isinstance(default_storage, FileSystemStorage)
    assert resolve("/media/events/poster.png").kwargs["document_root"] == settings.MEDIA_ROOT


# --- Email -------------------------------------------------------------------------------------------------


def test_email_is_sent_through_ses_from_the_verified_sender(pod, aws_env):
    assert pod["email"] == "django_ses.SESBackend"
    assert pod["ses_region"] == REGION  # the identity is verified there only
    assert pod["unverified_sender"] == "MessageRejected"
    assert pod["sent"] == 1
    # What SES received, read back from moto's own record of sent messages.
    data = json.loads(moto_get(aws_env["AWS_ENDPOINT_URL"], "/moto-api/data.json"))
    received = [m for m in data["ses"]["RawMessage"] if "Jazz Night" in m["raw_data"]]
    assert len(received) == 1
    assert received[0]["source"] == "AegisTickets <tickets@shop.example>"
    assert set(received[0]["destinations"]) == {"ada@example.com"}
    assert "Order ABC123" in received[0]["raw_data"]


# The Django setting each field of EmailSettings becomes (aegistickets/settings/base.py).
ATTRIBUTES = {
    "EMAIL_BACKEND": "backend",
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "user",
    "EMAIL_HOST_PASSWORD": "password",  # pragma: allowlist secret
    "EMAIL_USE_TLS": "use_tls",
    "AWS_SES_REGION_NAME": "ses_region",
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("consolemail://", {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}),
        (
            "smtp+tls://mailer:s%40cret@smtp.example.com:587",
            {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "smtp.example.com",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "mailer",
                "EMAIL_HOST_PASSWORD": "s@cret",
                "EMAIL_USE_TLS": True,
            },
        ),
        (
            "ses://",
            {
                "EMAIL_BACKEND": "django_ses.SESBackend",
                "AWS_SES_REGION_NAME": REGION,
            },
        ),
        (
            "ses://us-east-1",
            {
                "EMAIL_BACKEND": "django_ses.SESBackend",
                "AWS_SES_REGION_NAME": "us-east-1",
            },
        ),
    ],
)
def test_email_url_chooses_the_backend(url, expected):
    config = email_settings(url=url, default_region=REGION)
    assert {key: getattr(config, ATTRIBUTES[key]) for key in expected} == expected


def test_an_unknown_email_url_scheme_is_refused():
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL has an unknown scheme 'sess'"):
        email_settings(url="sess://")


# --- Database credentials from Secrets Manager -------------------------------------------------------------


def test_database_is_built_from_the_secret_parts_in_the_region_of_its_arn(aws_env):
    arn = create_secret("aegistickets/dev/db-parts", SECRET_PARTS, region="eu-west-1")
    assert ":eu-west-1:" in arn  # the app runs with AWS_REGION=eu-central-1

    assert database_from_secret(secret_id=arn, region_name=REGION) == {**EXPECTED_DATABASE, "ENGINE": POSTGRESQL}


def test_database_is_built_from_the_secret_url(aws_env):
    url = "postgres://shop:p%40ss%3Aw%2Frd%3F@shop.abc123.eu-west-1.rds.amazonaws.com:5432/aegistickets"
    arn = create_secret("aegistickets/dev/db-url", {"url": url})

    assert database_from_secret(secret_id=arn, region_name=REGION) == {**EXPECTED_DATABASE, "ENGINE": POSTGRESQL}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("hunter2", "the secret is not a JSON object"),
        ('["shop", "hunter2"]', "the secret is not a JSON object"),
        ({"username": "shop", "password": PASSWORD}, "the secret has no url and lacks the keys: host, dbname"),
        ({"url": "shop:hunter2@db:5432/shop"}, "the secret's url is not a database URL"),
        ({**SECRET_PARTS, "port": "fivefour"}, "the secret's port is not a number: 'fivefour'"),
    ],
)
def test_a_malformed_secret_is_a_clear_start_up_error(aws_env, value, problem):
    arn = create_secret(f"aegistickets/bad-{abs(hash(str(value)))}", value)

    with pytest.raises(ImproperlyConfigured) as error:
        database_from_secret(secret_id=arn, region_name=REGION)
    assert str(error.value).startswith(f"DATABASE_SECRET_ARN={arn}: {problem}")
    assert PASSWORD not in str(error.value)
    assert "hunter2" not in str(error.value)


def test_a_missing_secret_is_a_clear_start_up_error(aws_env):
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:aegistickets/nope-AbCdEf"

    with pytest.raises(ImproperlyConfigured, match="no such secret in this region") as error:
        database_from_secret(secret_id=arn, region_name=REGION)
    assert str(error.value).startswith(f"DATABASE_SECRET_ARN={arn}: ")
    assert "ResourceNotFoundException" in str(error.value)


def test_a_secret_the_role_may_not_read_is_a_clear_start_up_error(aws_env, monkeypatch):
    arn = create_secret("aegistickets/dev/db-denied", SECRET_PARTS)
    iam = client("iam")
    iam.create_user(UserName="shop-without-secret-access")
    key = iam.create_access_key(UserName="shop-without-secret-access")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    moto_post(aws_env["AWS_ENDPOINT_URL"], "/moto-api/reset-auth", b"0")  # moto now enforces IAM policies
    try:
        with pytest.raises(ImproperlyConfigured, match="secretsmanager:GetSecretValue") as error:
            database_from_secret(secret_id=arn, region_name=REGION)
    finally:
        moto_post(aws_env["AWS_ENDPOINT_URL"], "/moto-api/reset-auth", b"inf")
    assert str(error.value).startswith(f"DATABASE_SECRET_ARN={arn}: access denied")


def test_settings_read_the_database_from_the_secret_at_start(pod):
    database = pod["database"]
    assert {key: database[key] for key in EXPECTED_DATABASE} == EXPECTED_DATABASE
    assert database["ENGINE"] == "django_prometheus.db.backends.postgresql"  # Django's, with query metrics
    # The PostgreSQL connection settings from base.py apply to it as to DATABASE_URL.
    assert database["OPTIONS"]["connect_timeout"] == 5
    assert database["CONN_MAX_AGE"] == 60


def test_the_app_refuses_to_start_with_a_wrong_secret(aws_env):
    arn = create_secret("aegistickets/dev/db-not-json", "hunter2")

    result = django_run("from django.conf import settings\nsettings.DATABASES", **aws_env, DATABASE_SECRET_ARN=arn)

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        f"django.core.exceptions.ImproperlyConfigured: DATABASE_SECRET_ARN={arn}: "
        "the secret is not a JSON object with username, password, host, port, dbname or url"
    )
    assert "KeyError" not in result.stderr
    assert "JSONDecodeError" not in result.stderr
    assert "hunter2" not in result.stderr
