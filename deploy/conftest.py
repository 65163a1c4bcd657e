"""deploy/tests needs the deploy tools (.venv-deploy: helm-python-sdk, checkov, ...), so `make test` leaves it out;
scripts/deploy/check-chart.sh runs it with its own pytest.ini and --confcutdir, which skips this file."""

collect_ignore = ["tests"]
