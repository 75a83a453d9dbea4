"""Saved views: a named look at runs that a team shares through the store.

A view is what the Runs page shows (experiments, filter, order, columns) and how it charts
them (metrics, grouped by params or tags, the band, the x axis, the smoothing); saving one
writes an event file under ``views/<name>/`` (:mod:`mltrail.storage.view_events`), so views
are committed with the runs, read in a git diff, and two branches' views merge as files do.

    >>> store.views.save("seeds", experiments=["wine"], filter="params.alpha = '0.5'",
    ...                  charts=["rmse"], group_by=["params.l1_ratio"])   # doctest: +SKIP
    >>> view = store.views.get("seeds")                                    # doctest: +SKIP
    >>> store.search_runs(**view.search_args())                            # doctest: +SKIP

On a server, a view that names an experiment the reader may not read does not exist for
them, and only its author (the first to save it) or an admin may change or delete it.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..config import current_user
from ..errors import InvalidInputError, NotFoundError
from ..storage import view_events as vev
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.ids import new_id
from ..storage.layout import FOLDER_NAME, Layout

if TYPE_CHECKING:
    import pandas as pd

VIEWS_FOLDER = "views"


@dataclass(frozen=True)
class SavedView:
    """A view as its latest save left it, with who made it and who changed it last."""

    name: str
    experiments: list[str] = field(default_factory=list)  # [] = every experiment
    filter: str = ""
    order_by: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    group_by: list[str] = field(default_factory=list)
    band: str = "std"
    x: str = "step"
    smoothing: float = 0.0
    description: str = ""
    author: str | None = None  # the first save's
    saved_by: str | None = None  # the latest save's
    created: float = 0.0  # seconds since 1970
    updated: float = 0.0
    saves: int = 1

    def search_args(self) -> dict[str, Any]:
        """The arguments of ``store.search_runs`` that find the view's runs."""
        return {"experiment": list(self.experiments) or None, "filter": self.filter or None,
                "order_by": list(self.order_by) or None}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SavedView:
        return cls(**data)


def view_name(name: object) -> str:
    """``name`` if it can name a view (a folder under ``views/``), else InvalidInputError."""
    if not isinstance(name, str) or not re.fullmatch(FOLDER_NAME, name):
        raise InvalidInputError(f"view name {str(name)[:100]!r}: letters, digits, '.', '_' and '-', at most 100, "
                                "starting with a letter or a digit")
    return name


SAVED_FIELDS = ("experiments", "filter", "order_by", "columns", "charts", "group_by", "band", "x",
                "smoothing", "description")


class SavedViews:
    """The store's saved views (``store.views``)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.folder = layout.root / VIEWS_FOLDER
        self._readers: dict[str, EventFolder] = {}

    # -- reading -----------------------------------------------------------------------

    def names(self) -> builtins.list[str]:
        return [view.name for view in self.all()]

    def all(self) -> builtins.list[SavedView]:
        """Every view not deleted, by name."""
        try:
            folders = sorted(p.name for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            return []
        found = (self._replay(name) for name in folders)
        return [view for view in found if view is not None]

    def list(self) -> pd.DataFrame:
        """One row per view: name, experiments, filter, charts, group_by, author, updated."""
        import pandas as pd

        rows = [{"name": v.name, "experiments": ", ".join(v.experiments), "filter": v.filter,
                 "charts": ", ".join(v.charts), "group_by": ", ".join(v.group_by), "author": v.author,
                 "saved_by": v.saved_by, "updated": pd.Timestamp(v.updated, unit="s", tz="UTC"),
                 "description": v.description} for v in self.all()]
        return pd.DataFrame(rows, columns=["name", "experiments", "filter", "charts", "group_by", "author",
                                           "saved_by", "updated", "description"])

    def exists(self, name: str) -> bool:
        return self._replay(name) is not None

    def get(self, name: str) -> SavedView:
        view = self._replay(name)
        if view is None:
            raise NotFoundError(f"no saved view {name!r}")
        return view

    def _replay(self, name: str) -> SavedView | None:
        if not isinstance(name, str) or not re.fullmatch(FOLDER_NAME, name):  # never a path
            return None
        if name not in self._readers and not (self.folder / name).is_dir():
            return None  # (no reader kept for a name asked after: a server is asked any name)
        view: SavedView | None = None
        author: str | None = None
        created, saves = 0.0, 0
        for event in self._reader(name).events():
            if event.name != name:  # a file copied into another view's folder by hand
                continue
            if isinstance(event, vev.ViewSaved):
                if view is None:
                    author, created, saves = event.by, event.ts, 0
                saves += 1
                view = SavedView(name=name, **{f: getattr(event, f) for f in SAVED_FIELDS}, author=author,
                                 saved_by=event.by, created=created, updated=event.ts, saves=saves)
            else:  # deleted: a later save starts the view again, with a new author
                view = None
        return view

    def _reader(self, name: str) -> EventFolder:
        reader = self._readers.get(name)
        if reader is None:
            reader = self._readers[name] = EventFolder(self.folder / name, vev.VIEW_EVENT_ADAPTER, "view")
        return reader

    # -- writing -----------------------------------------------------------------------

    def save(self, name: str, *, experiments: Sequence[str] | None = None, filter: str | None = None,
             order_by: Sequence[str] | str | None = None, columns: Sequence[str] | None = None,
             charts: Sequence[str] | None = None, group_by: Sequence[str] | None = None, band: str = "std",
             x: str = "step", smoothing: float = 0.0, description: str | None = None,
             by: str | None = None) -> SavedView:
        """Save view ``name`` (a new one, or a new version replacing every field). The filter
        and the order are checked as a search would check them: nothing is saved if wrong."""
        from ..query.filter import parse_filter, parse_order_by

        order = [order_by] if isinstance(order_by, str) else list(order_by or [])
        fields = {"experiments": [experiments] if isinstance(experiments, str) else list(experiments or []),
                  "filter": filter or "", "order_by": order, "columns": list(columns or []),
                  "charts": list(charts or []), "group_by": list(group_by or []), "band": band, "x": x,
                  "smoothing": smoothing, "description": description or ""}
        event = self._event(vev.ViewSaved, name, by, **fields)  # (its bounds first: then the parser's work)
        if filter:
            parse_filter(filter)
        for clause in order:
            parse_order_by(clause)
        self._write(event)
        return self.get(name)

    def delete(self, name: str, *, by: str | None = None) -> None:
        self.get(name)
        self._write(self._event(vev.ViewDeleted, name, by))

    def _event(self, model: type[vev.ViewEvent], name: str, by: str | None, **fields: Any) -> vev.ViewEvent:
        try:
            return model(ts=time.time(), id=new_id(), by=by or current_user(), name=name, **fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"view {str(name)[:100]!r}: {problems}") from None

    def _write(self, event: vev.ViewEvent) -> Path:
        self.layout.ensure()
        return write_event_file(self.folder / event.name, event.id, event)
