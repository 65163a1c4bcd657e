"""`make fuzz`: schemathesis against the whole API, served by gunicorn on PostgreSQL, from its own OpenAPI schema.

Every operation (public and organizer, with an organizer token) is called with generated valid and invalid
input; it fails on any 5xx, any response that does not match the schema (status, content type, headers, body),
any error that is not problem JSON, and schema-violating input that is accepted. The app runs with rate
limits off (one client sends everything).

    python -m scripts.security.fuzz                 # CI: bounded, <= 2 minutes of fuzzing
    python -m scripts.security.fuzz --long          # documented longer run (docs/security.md): 20 minutes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from scripts.perf.harness import ROOT, served_app

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
PORT = 18170
DATABASE = "aegistickets_fuzz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--long", action="store_true", help="20 minutes and more examples per operation")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    max_time, max_examples = (1200, 500) if args.long else (110, 40)
    report = ROOT / "reports" / "fuzz"
    report.mkdir(parents=True, exist_ok=True)
    with served_app(port=PORT, database=DATABASE, workers=2) as app:
        command = [
            SCHEMATHESIS,
            "run",
            f"{app.url}/api/schema/",
            "--checks",
            "all",
            # Not bugs, by design: the schema cannot express cross-field business rules (ends after starts, quantity
            # within max_per_order, a known payment method), so schema-valid input may rightly get 400; and a newly
            # created event is unpublished, so the public GET answers 404 until an organizer publishes it.
            "--exclude-checks",
            "positive_data_acceptance,ensure_resource_availability",
            "--max-examples",
            str(max_examples),
            "--max-time",
            str(max_time),
            "--continue-on-failure",
            "--request-timeout",
            "10",
            "--header",
            f"Authorization: Token {app.token}",
            "--report",
            "junit",
            "--report-dir",
            str(report),
            "--generation-database",
            "none",
        ]
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        print("schemathesis:", " ".join(c if "Token" not in c else "Authorization: Token ***" for c in command))
        return subprocess.run(command, cwd=ROOT, check=False).returncode  # noqa: S603 - fixed argv


if __name__ == "__main__":
    sys.exit(main())
