# The project's verbs. `make run` and `make test` are all a new user needs (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run serve install install-dev test lint format migrate seed clean catalogs messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

## catalogs: compile the message catalogs (locale/<lang>/LC_MESSAGES/django.po -> .mo; pure Python, no gettext needed)
catalogs: install
	$(BIN)/python -m aegistickets.catalogs

## messages: re-extract every translatable string of the templates and code into locale/de/LC_MESSAGES/django.po
## (Django's makemessages; needs GNU gettext: apt-get install gettext); then translate the new entries and run
## `make catalogs`
messages: install
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemessages --locale de --no-obsolete --no-location \
		--ignore '.venv*' --ignore 'scripts/*' --ignore 'locustfiles/*' --ignore '*/tests/*' --ignore 'terraform/*' \
		--ignore 'deploy/*' --ignore 'staticfiles/*' --ignore 'node_modules/*'

.env:
	$(PYTHON) scripts/write_env.py .env

## run: set up (venv, .env, migrate, static files, demo data); serve with gunicorn on $(HOST):$(PORT) and run the
## email worker (manage.py send_emails) next to it; Ctrl-C stops both
run: install .env catalogs
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Shop:   http://$(HOST):$(PORT)/"
	@echo "  Admin:  http://$(HOST):$(PORT)/admin/  (user admin; password: DEMO_ADMIN_PASSWORD in .env,"
	@echo "          or create your own with: $(BIN)/python manage.py createsuperuser)"
	@echo "  API:    http://$(HOST):$(PORT)/api/docs/"
	@echo "  Emails: sent by the email worker running alongside (manage.py send_emails); with the default"
	@echo "          EMAIL_URL=consolemail:// each one is printed here"
	@echo ""
	@# Both in the background of one shell: Ctrl-C (or SIGTERM) stops gunicorn, and once gunicorn has exited
	@# for any reason the worker is stopped too (SIGTERM: it finishes the email in hand), then both are awaited.
	@$(BIN)/python manage.py send_emails & worker=$$!; \
	$(BIN)/gunicorn -c gunicorn.conf.py aegistickets.wsgi:application & web=$$!; \
	trap 'kill $$web 2>/dev/null' INT TERM; \
	wait $$web; kill $$web $$worker 2>/dev/null; wait

## test: the whole suite (SQLite unless DATABASE_URL points at PostgreSQL); exit code 5 (nothing collected) fails too
test: install-dev catalogs
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff (lint + format check), the import contracts (pyproject.toml) and mypy on the services and selectors
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy events/services.py events/selectors.py events/availability.py orders/services.py orders/selectors.py \
		orders/seats.py orders/payments.py orders/outbox.py orders/checkout.py orders/stripe_provider.py orders/webhooks.py orders/waiting_list.py orders/selfservice.py events/calendar.py

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache

# --- load testing (Locust; README "Load testing") ------------------------------------------------------
# The server under test must run with RATE_LIMITS_ENABLED=false (one client address sends all the load);
# perf-report, loadtest-smoke, bench, fuzz, chaos and monitoring-check serve the app themselves with it set
# (scripts/lib/serve.py: a fresh PostgreSQL database, gunicorn, nginx as the ingress where it matters).
SCENARIO ?= happy_path
LOADTEST_HOST = $(if $(findstring ://,$(HOST)),$(HOST),http://$(HOST):$(PORT))
LOADTEST_ENV = RATE_LIMITS_ENABLED=false DURATION="$(DURATION)" USERS="$(USERS)" AEGIS_API_TOKEN="$(AEGIS_API_TOKEN)"
.PHONY: loadtest loadtest-ui loadtest-smoke perf-report

## loadtest: headless Locust run of locustfiles/$(SCENARIO).py against $(HOST) into reports/<scenario>-<time>/: Locust's
## HTML report and CSV stats (full history), the scenario's gate table and figures in locust_summary.json; exit 1 on a FAIL
loadtest: install-dev catalogs
	@test -f locustfiles/$(SCENARIO).py || { echo "no scenario locustfiles/$(SCENARIO).py" >&2; exit 2; }
	@out=reports/$(SCENARIO)-$$(date +%Y%m%d-%H%M%S); mkdir -p $$out; \
	echo "Locust $(SCENARIO) → $(LOADTEST_HOST), report in $$out/"; \
	$(LOADTEST_ENV) $(BIN)/locust -f locustfiles/$(SCENARIO).py --headless --host $(LOADTEST_HOST) \
		--html $$out/report.html --csv $$out/locust --csv-full-history

## loadtest-ui: Locust's web UI on http://127.0.0.1:8089 for locustfiles/$(SCENARIO).py (pick its shape or "Default")
loadtest-ui: install-dev
	$(LOADTEST_ENV) $(BIN)/locust -f locustfiles/$(SCENARIO).py --host $(LOADTEST_HOST) \
		--web-host 127.0.0.1 --web-port 8089 --class-picker

## loadtest-smoke: every scenario briefly (<= 60 s of load) on PostgreSQL; fails on 5xx, failed checks, oversold
loadtest-smoke: install-dev
	$(BIN)/python -m scripts.perf.smoke

## perf-report: serve on PostgreSQL behind nginx, run every scenario (FULL=1: full shapes), write
## reports/performance-report.{md,html} (gates, figures, per-endpoint latency, plots); Locust's own output in reports/perf-<time>/
perf-report: install-dev
	$(BIN)/python -m scripts.perf.report $(if $(filter 1 yes true,$(FULL)),--full)

# --- Terraform (terraform/; docs/deploy.md "1. Infrastructure with Terraform") ----------------------------
.PHONY: tf-check tf-validate

## tf-check: offline Terraform checks: fmt -check, checkov, HCL wiring test, each environment's variable file through
## Terraform's validations, each shown failing on planted defects (one root configuration in terraform/; an
## environment is its terraform/envs/<env>.tfvars + <env>.backend.hcl)
tf-check:
	scripts/deploy/check-terraform.sh

## tf-validate: terraform init -backend=false && terraform validate of terraform/; NEEDS registry.terraform.io access
## (provider downloads), so it cannot run on the offline CI machine; run it where the registry is reachable
tf-validate:
	scripts/deploy/validate-terraform.sh

# --- Container image and Helm chart (Dockerfile, deploy/helm/aegistickets; docs/deploy.md) ----------------
.PHONY: chart-check

## chart-check: offline image + chart checks: hadolint, checkov (dockerfile, kubernetes), helm lint --strict and
## template per values file, Kubernetes 1.28 + CRD schemas, shellcheck, deploy/tests (each shown failing on a defect)
chart-check:
	scripts/deploy/check-chart.sh

# --- Observability (deploy/helm/aegistickets/files/monitoring/, deploy/monitoring/tests/; docs/slos.md) ----
.PHONY: rules-check monitoring-check

## rules-check: promtool check + unit tests of the chart's rules; rendered PrometheusRule re-tested (installs promtool)
rules-check:
	scripts/monitoring/rules_check.sh

## monitoring-check: gunicorn (3 workers) on PostgreSQL scraped by a real Prometheus with the real rules; asserts
## exact request totals, every sli:*/slo:* series, alerts and dashboard queries through Prometheus' API (~1 min)
monitoring-check: install-dev
	scripts/monitoring/install_prometheus.sh
	$(BIN)/python -m scripts.monitoring.check_e2e

# --- Everything deployable, checked offline ---------------------------------------------------------------
.PHONY: deploy-check bench

## deploy-check: every offline check of the image, the chart and the Terraform (each shown failing on a planted defect)
deploy-check: chart-check tf-check

## bench: every speed target measured in one run against PostgreSQL, as target | goal | measured | result; throughput as
## fractions of the framework ceiling (scripts/bench/ceiling) served in the same run (QUICK=1: shorter; ONLY=flash_sale
## or a comma-separated list of catalog,happy_path,html_flow,stress,flash_sale: just those; COMPARE=<git-rev>: that
## commit's code too, with its own venv, measured alternately in the same run: figure | old | new | new/old)
bench: install-dev
	$(BIN)/python -m scripts.bench.run $(if $(filter 1 yes true,$(QUICK)),--quick) $(if $(ONLY),--only $(ONLY)) \
		$(if $(COMPARE),--compare $(COMPARE))

# --- Security (docs/security.md) --------------------------------------------------------------------------
.PHONY: audit

## audit: pip-audit (own venv) of everything installed from requirements*.txt; fails on a known vulnerability,
## on a package it could not audit, and when the vulnerability service (PyPI JSON API) is unreachable
audit: install-dev
	scripts/security/audit.sh

.PHONY: fuzz fuzz-long

## fuzz: schemathesis over every API operation (organizer token included), gunicorn on PostgreSQL, <= 2 min:
## fails on any 5xx, schema mismatch or non-problem-JSON error (reports/fuzz/junit-*.xml)
fuzz: install-dev
	$(BIN)/python -m scripts.security.fuzz

## fuzz-long: the same for 20 minutes with more examples per operation (docs/security.md)
fuzz-long: install-dev
	$(BIN)/python -m scripts.security.fuzz --long

.PHONY: chaos

## chaos: faults on a served shop (private PostgreSQL on 55432, never the shared one; Stripe is localstripe): slow
## database, worker SIGKILL mid-checkout, database crash and restart under load, Stripe not answering, webhooks
## duplicated and before the buyer's return, the database lost and a worker killed while Stripe authorizes, a lost
## commit acknowledgement, a SOAK-second soak (60; SOAK=600 for the documented 10 minutes); then the books from the
## database and Stripe. Prints fault | check | expected | observed | PASS/FAIL (~2 min)
chaos: install-dev
	$(BIN)/python -m scripts.chaos.run $(if $(SOAK),--soak $(SOAK))
