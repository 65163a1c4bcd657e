"""Compiles the message catalogs (locale/<lang>/LC_MESSAGES/django.po) to the .mo files Django reads.

`python -m aegistickets.catalogs` (`make catalogs`; the image build, `make run`, `make test`). polib does it in pure
Python, so neither the image nor a developer machine needs GNU gettext to build; only re-extracting the strings
(`make messages`, Django's makemessages) needs it. The .mo files are build output and are not committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import polib

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_catalogs(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Writes a .mo next to every .po under `locale_dir` (fuzzy entries left out, as msgfmt does); returns them."""
    written = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        catalog = polib.pofile(str(po_path))
        mo_path = po_path.with_suffix(".mo")
        catalog.save_as_mofile(str(mo_path))
        written.append(mo_path)
    return written


def main() -> int:
    written = compile_catalogs()
    if not written:
        print(f"no catalogs under {LOCALE_DIR}", file=sys.stderr)
        return 1
    for path in written:
        print(f"compiled {path.relative_to(LOCALE_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
