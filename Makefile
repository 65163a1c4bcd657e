# The project's verbs. `make run` and `make test` are all a new user needs (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run serve install install-dev test lint format migrate seed clean

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

.env:
	$(PYTHON) scripts/write_env.py .env

## run: set up (venv, .env, migrate, static files, demo data) and serve with gunicorn on $(HOST):$(PORT)
run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Shop:   http://$(HOST):$(PORT)/"
	@echo "  Admin:  http://$(HOST):$(PORT)/admin/  (user admin; password: DEMO_ADMIN_PASSWORD in .env,"
	@echo "          or create your own with: $(BIN)/python manage.py createsuperuser)"
	@echo "  API:    http://$(HOST):$(PORT)/api/docs/"
	@echo ""
	$(BIN)/gunicorn -c gunicorn.conf.py aegistickets.wsgi:application

## test: the whole suite (SQLite unless DATABASE_URL points at PostgreSQL); exit code 5 (nothing collected) fails too
test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff (lint + format check) and mypy on the services and selectors
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy events/services.py events/selectors.py orders/services.py orders/selectors.py orders/payments.py

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache .ruff_cache
