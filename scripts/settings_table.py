"""Print, check or write the README's table of settings, generated from src/mltrail/config.py.

    python scripts/settings_table.py            # print the table
    python scripts/settings_table.py --write    # replace the README's table with it
    python scripts/settings_table.py --check    # exit 1 if the README's table differs

The README keeps the table between two markers (see ``BEGIN`` and ``END``), so the rest
of its Configuration section stays hand-written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mltrail.config import settings_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- settings table: generated from src/mltrail/config.py by scripts/settings_table.py -->\n"
END = "<!-- end of the settings table -->\n"


def readme_table(text: str) -> str:
    """The table between the README's markers."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README}: no settings table between {BEGIN.strip()} and {END.strip()}")
    return text[start + len(BEGIN):end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="replace the README's table")
    action.add_argument("--check", action="store_true", help="exit 1 if the README's table differs")
    args = parser.parse_args(argv)
    table = settings_markdown()
    if args.write:
        text = README.read_text(encoding="utf-8")
        old = readme_table(text)
        start = text.find(BEGIN) + len(BEGIN)
        README.write_text(text[:start] + table + text[start + len(old):], encoding="utf-8")
    elif args.check:
        if readme_table(README.read_text(encoding="utf-8")) != table:
            print(f"{README}: the settings table differs from src/mltrail/config.py; "
                  "run python scripts/settings_table.py --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
