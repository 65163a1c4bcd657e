# syntax=docker/dockerfile:1
# AegisTickets: one image serves the shop's pages, API, admin and static files (gunicorn + whitenoise).
#   docker build -t aegistickets:<version> .        (push to ECR: docs/deploy.md)
# Runs as uid 10001 on a read-only root filesystem; only /tmp must be writable (an emptyDir in Kubernetes).
# Checked offline by scripts/deploy/check-chart.sh (hadolint, checkov) and aegistickets/tests/test_container_image.py.

# ---- builder: wheels for every pinned requirement, installed into a venv that the runtime stage copies ----
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /build/wheels -r requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /build/wheels -r requirements.txt \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools

# ---- fonts: the tickets PDF prints any name (DejaVu: Latin, Greek, Cyrillic; Droid Sans Fallback: Chinese,
# Japanese, Korean); fetched here so the runtime stage installs nothing and only copies the font files ----
FROM debian:bookworm-slim AS fonts
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core=2.37-6 fonts-droid-fallback=1:6.0.1r16-1.1 \
 && rm -rf /var/lib/apt/lists/*

# ---- runtime: the venv, the code, the collected static files; no compilers, no pip caches ----
FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="aegistickets" \
      org.opencontainers.image.description="AegisTickets event ticket shop (Django, gunicorn)"
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=aegistickets.settings.production \
    DJANGO_ENV_FILE=/nonexistent/.env
RUN groupadd --system --gid 10001 aegis \
 && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin aegis
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=fonts /usr/share/fonts/truetype/dejavu/ /usr/share/fonts/truetype/dejavu/
COPY --from=fonts /usr/share/fonts/truetype/droid/ /usr/share/fonts/truetype/droid/
# Only what runs (tests are left out by .dockerignore). A new Django app must be added here;
# aegistickets/tests/test_container_image.py fails when one is missing.
COPY manage.py gunicorn.conf.py ./
COPY aegistickets/ aegistickets/
COPY events/ events/
COPY orders/ orders/
COPY templates/ templates/
COPY static/ static/
COPY locale/ locale/
# collectstatic needs a secret key to import the settings; this throwaway one exists only in this RUN step.
# The message catalogs (.po) are compiled to .mo and bytecode is compiled here, once: at run time the root
# filesystem is read-only.
RUN DJANGO_SECRET_KEY=collectstatic-build-step-only python manage.py collectstatic --noinput -v 0 \
 && python -m aegistickets.catalogs \
 && python -m compileall -q /app
# Serving settings, after the build steps: gunicorn creates the prometheus multiprocess directory at start
# (gunicorn.conf.py); a build step importing the app with it set would fail on the missing directory.
# XDG_RUNTIME_DIR: where gunicorn puts its control socket (gunicornc), writable /tmp rather than $HOME.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    XDG_RUNTIME_DIR=/tmp \
    GUNICORN_ACCESS_LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
USER 10001:10001
# 8001: the checkout lane, when CHECKOUT_PORT=8001 is set (the Helm chart does; gunicorn.conf.py).
EXPOSE 8000 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "aegistickets.wsgi:application"]
