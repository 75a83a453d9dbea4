"""Reports: Markdown files under the store's ``reports/`` that a team reads together.

A report is ``reports/<name>.md``: prose, and fenced blocks (```` ```mltrail runs ````,
``chart``, ``ab``...) that name runs, filters, charts and A/B results; the dashboard and
``mltrail report render`` draw them with live data (:mod:`mltrail.reports`). The file is
plain text: it reads in a git diff and on a code host, and it is edited like any file.

A report's YAML front matter (``---`` lines at its top) may hold a ``title``; saving one
through :meth:`Reports.save` records its ``author`` there (the first to save it), whom a
server lets alone change or delete it.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..config import current_user
from ..errors import InvalidInputError, NotFoundError
from ..storage.atomic import write_atomic
from ..storage.layout import FOLDER_NAME, Layout, is_unicode_text

if TYPE_CHECKING:
    import pandas as pd

REPORTS_FOLDER = "reports"
MAX_REPORT_BYTES = 1_000_000  # a report is prose and blocks; data stays in the runs
MAX_FRONT_MATTER = 10_000  # characters of YAML at a report's top: a title and an author, not data
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
_AUTHOR_LINE = re.compile(r"^author:.*$", re.MULTILINE)
_HEADING = re.compile(r"^#[ \t]+(\S[^\n]*)$", re.MULTILINE)  # (no \s: it spans lines, and backtracks)


@dataclass(frozen=True)
class Report:
    name: str
    text: str
    title: str
    author: str | None
    updated: float  # the file's modification time, seconds since 1970

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "text": self.text, "title": self.title, "author": self.author,
                "updated": self.updated}


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A report's front matter (``{}`` when it has none, or none that parses as a mapping:
    a reader is tolerant, whatever a file holds) and the Markdown after it."""
    match = _FRONT.match(text)
    if match is None:
        return {}, text
    return _meta(match.group(1)) or {}, text[match.end():]


def _meta(yaml_text: str) -> dict[str, Any] | None:
    """Front matter as a mapping, or None when it is none (too long, not YAML, not a mapping,
    or what PyYAML fails to build: a date of February 30, a nesting past its recursion)."""
    if len(yaml_text) > MAX_FRONT_MATTER:
        return None
    try:
        meta = yaml.safe_load(yaml_text)
    except Exception:  # noqa: BLE001 (YAMLError, and ValueError, RecursionError... from its constructors)
        return None
    return meta if isinstance(meta, dict) else None


def _text(value: Any) -> str | None:
    """A front matter value that is text (a title, an author), else None: an alias that
    expands to a huge list is not a name."""
    return value.strip() or None if isinstance(value, str) else None


def title_of(name: str, text: str) -> str:
    meta, body = front_matter(text)
    title = _text(meta.get("title"))
    if title:
        return title[:500]
    heading = _HEADING.search(body)
    return heading.group(1).rstrip(" \t#")[:500] or name if heading else name


def with_author(text: str, author: str) -> str:
    """``text`` whose front matter says ``author`` (added, or its author line replaced)."""
    line = "author: " + yaml.safe_dump(author, default_flow_style=True).strip().removesuffix("...").strip()
    match = _FRONT.match(text)
    if match is None:
        return f"---\n{line}\n---\n\n{text}"
    inner = match.group(1)
    inner = _AUTHOR_LINE.sub(line, inner, count=1) if _AUTHOR_LINE.search(inner) else f"{line}\n{inner}"
    return f"---\n{inner}---\n{text[match.end():]}"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not re.fullmatch(FOLDER_NAME, name):
        raise InvalidInputError(f"report name {str(name)[:100]!r}: letters, digits, '.', '_' and '-', "
                                "at most 100, starting with a letter or a digit")
    return name


class Reports:
    """The store's reports (``store.reports``)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.folder = layout.root / REPORTS_FOLDER

    def names(self) -> builtins.list[str]:
        try:
            files = sorted(p.name for p in self.folder.iterdir() if p.suffix == ".md" and p.is_file())
        except FileNotFoundError:
            return []
        return [f.removesuffix(".md") for f in files if re.fullmatch(FOLDER_NAME, f.removesuffix(".md"))]

    def list(self) -> pd.DataFrame:
        """One row per report: name, title, author, updated."""
        import pandas as pd

        rows = []
        for name in self.names():
            try:
                report = self.get(name)
            except (NotFoundError, InvalidInputError):  # removed, or not text, since it was listed
                continue
            rows.append({"name": name, "title": report.title, "author": report.author,
                         "updated": pd.Timestamp(report.updated, unit="s", tz="UTC")})
        return pd.DataFrame(rows, columns=["name", "title", "author", "updated"])

    def exists(self, name: str) -> bool:
        return isinstance(name, str) and re.fullmatch(FOLDER_NAME, name) is not None and self._path(name).is_file()

    def get(self, name: str) -> Report:
        if not self.exists(name):
            raise NotFoundError(f"no report {str(name)[:100]!r}")
        path = self._path(name)
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"no report {name!r}") from None
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        meta, _ = front_matter(text)
        return Report(name=name, text=text, title=title_of(name, text), author=_text(meta.get("author")),
                      updated=path.stat().st_mtime)

    def author_of(self, name: str) -> str | None:
        """The author of report ``name`` (None: none is said, or the file is not text)."""
        try:
            return self.get(name).author
        except InvalidInputError:  # (a file a git pull left as bytes: an admin replaces it)
            return None

    def save(self, name: str, text: str, *, by: str | None = None) -> Report:
        """Write report ``name`` (new, or replacing its text). Its author stays the first
        saver's; a new report's is ``by`` (default ``$MLTRAIL_USER`` or the login)."""
        check_name(name)
        if not isinstance(text, str) or not is_unicode_text(text):
            raise InvalidInputError(f"report {name!r}: the text must be Unicode text")
        if len(text) > MAX_REPORT_BYTES:  # (before any parsing: bytes below count exactly)
            raise InvalidInputError(f"report {name!r} is {len(text):,} characters: at most {MAX_REPORT_BYTES:,} "
                                    "bytes (a report names its data; the runs hold it)")
        author = (self.author_of(name) if self.exists(name) else None) or by or current_user()
        if author:
            text = with_author(text, author)
        match = _FRONT.match(text)
        if match is not None:  # what it says must be what a reader reads: one author, the saver's
            meta = _meta(match.group(1))
            if meta is None:
                raise InvalidInputError(f"report {name!r}: its front matter (the --- lines at its top) must be "
                                        f"a YAML mapping of at most {MAX_FRONT_MATTER:,} characters")
            if _text(meta.get("author")) != author:
                raise InvalidInputError(f"report {name!r}: its front matter names its author in a way mltrail "
                                        f"does not rewrite; the author is {author!r}: leave author out")
        data = text.encode("utf-8")
        if len(data) > MAX_REPORT_BYTES:
            raise InvalidInputError(f"report {name!r} is {len(data):,} bytes: at most {MAX_REPORT_BYTES:,} "
                                    "(a report names its data; the runs hold it)")
        self.layout.ensure()
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(name), data)
        return self.get(name)

    def delete(self, name: str, *, by: str | None = None) -> None:
        """Remove the report's file (git keeps its history)."""
        del by  # (who deleted it is the commit's; a server checks the author first)
        if not self.exists(name):
            raise NotFoundError(f"no report {str(name)[:100]!r}")
        self._path(name).unlink()

    def _path(self, name: str) -> Path:
        return self.folder / f"{check_name(name)}.md"
