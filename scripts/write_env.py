"""Writes an untracked .env with freshly generated secrets, unless one already exists.

`make run` calls it so the shop starts on a new machine with no environment variables at all.
"""

import secrets
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
if path.exists():
    sys.exit(0)
path.write_text(
    "# Written by `make run` on first start; not tracked by git. Real environment variables win.\n"
    f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
    f"DEMO_ADMIN_PASSWORD={secrets.token_urlsafe(12)}\n"
)
path.chmod(0o600)
print(f"Wrote {path} with a generated DJANGO_SECRET_KEY and DEMO_ADMIN_PASSWORD.")
