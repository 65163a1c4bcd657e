"""What the tooling scripts share: serving the shop, PostgreSQL, HTTP, processes, waiting, Locust runs.

- `serve.served()`: a fresh database, migrated and seeded, served by gunicorn (optionally behind nginx as the
  ingress) with the email worker beside it, for the code of this tree or of another commit (`source`).
- `source`: the code to serve (a source tree and its own venv); `postgres`: the shared cluster and psql;
  `http`: one HTTP client; `wait`: polling with a deadline; `processes`: process groups, workers, memory;
  `ingress`: nginx routing like the Helm chart's Ingress; `locust`: one headless Locust run and its CSV files.
"""
