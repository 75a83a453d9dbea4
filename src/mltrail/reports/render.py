"""A report's blocks read from a store, as the one who reads it may read it.

:func:`render` turns a report's text into pieces to draw: prose (Markdown), tables,
charts (Altair: the dashboard's own), values and problems. Every number comes from the
store's public calls (``search_runs``, ``metric_history``, ``grouped_history``, an A/B
experiment's ``results``), so a block shows what the API answers, and on a server only
the runs and experiments the reader may read. A block that cannot be drawn (a filter that
does not parse, a view or experiment the reader cannot see) becomes a problem in its
place, naming its line; the rest of the report is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import altair as alt
import pandas as pd

from ..dashboard import charts, views
from ..errors import InvalidInputError, MltrailError, NotFoundError, UpstreamError
from .blocks import AbSpec, Block, ChartSpec, Prose, RunsSpec, ValueSpec, as_list, parse

if TYPE_CHECKING:
    from ..contract import StoreApi

GROUPED_POINTS = 300  # x buckets a grouped curve: a report's chart is about this wide
AB_COLUMNS = ["metric", "variant", "units", "mean", "relative", "relative_ci_low", "relative_ci_high", "p_value",
              "significant"]


@dataclass(frozen=True)
class Table:
    title: str
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Charts:
    title: str
    charts: list[Any] = field(default_factory=list)  # Altair charts, one a metric
    caption: str = ""


@dataclass(frozen=True)
class Value:
    title: str
    text: str  # the value, formatted
    caption: str = ""


@dataclass(frozen=True)
class Problem:
    text: str


Piece = Prose | Table | Charts | Value | Problem


def render(store: StoreApi, text: str) -> list[Piece]:
    """The report's pieces, in order, read from ``store``."""
    pieces: list[Piece] = []
    for part in parse(text):
        if isinstance(part, Prose):
            pieces.append(part)
        elif part.spec is None:
            pieces.append(Problem(part.problem or f"the block at line {part.line} cannot be drawn"))
        else:
            try:
                pieces.append(_drawn(store, part))
            except UpstreamError:  # the server went away: not the block's fault, nor the reader's to see as one
                raise
            except MltrailError as exc:  # a filter, a view, an experiment: named with the block's line
                pieces.append(Problem(f"the block at line {part.line} ({part.kind}): {exc}"))
    return pieces


def _drawn(store: StoreApi, block: Block) -> Piece:
    spec = block.spec
    if isinstance(spec, RunsSpec):
        return _runs(store, spec)
    if isinstance(spec, ChartSpec):
        return _charts(store, spec)
    if isinstance(spec, ValueSpec):
        return _value(store, spec)
    assert isinstance(spec, AbSpec)
    return _ab(store, spec)


# -- selecting runs: a block's own fields over its saved view's --------------------------

@dataclass(frozen=True)
class _Selected:
    runs: pd.DataFrame
    described: str  # "12 runs in wine where metrics.rmse < 0.8"
    view: Any  # the saved view, or None
    scope: str  # " in wine where metrics.rmse < 0.8" ("" for every run)

    @property
    def sentence(self) -> str:
        """As a sentence's start."""
        return self.described[:1].upper() + self.described[1:]


def _selected(store: StoreApi, spec: RunsSpec | ChartSpec | ValueSpec, max_results: int | None = None) -> _Selected:
    view = store.views.get(spec.view) if spec.view else None
    experiments = as_list(spec.experiment) or (list(view.experiments) if view else [])
    filter_text = spec.filter if spec.filter is not None else (view.filter if view else "")
    order = as_list(spec.order_by) or (list(view.order_by) if view else [])
    runs = store.search_runs(experiment=experiments or None, filter=filter_text or None, order_by=order or None,
                             max_results=max_results)
    scope = (f" in {', '.join(experiments)}" if experiments else "") + (f" where {filter_text}" if filter_text else "")
    described = views.counted(len(runs), "run") + scope + (f", by {', '.join(order)}" if order else "")
    return _Selected(runs, described, view, scope)


def _runs(store: StoreApi, spec: RunsSpec) -> Table:
    selected = _selected(store, spec, max_results=spec.limit)
    runs = selected.runs
    wanted = spec.columns if spec.columns is not None else (
        list(selected.view.columns) if selected.view is not None and selected.view.columns else None)
    columns = wanted if wanted is not None else views.default_columns(runs)
    missing = [c for c in columns if c not in runs.columns]
    table = pd.DataFrame({"run": list(views.series_names(runs).values()) if len(runs) else []})
    for column in columns:
        table[column.split(".", 1)[-1] if column.startswith(("params.", "metrics.", "tags.")) else column] = \
            runs[column].to_numpy() if column in runs.columns else None
    caption = f"The first {selected.described}" if len(runs) == spec.limit else selected.sentence
    if missing:
        caption += f" · no run found has {', '.join(missing)}"
    return Table(spec.title or "", table, caption)


def _charts(store: StoreApi, spec: ChartSpec) -> Charts:
    selected = _selected(store, spec)
    view = selected.view
    runs = selected.runs
    metrics = as_list(spec.metrics) or (list(view.charts) if view else []) or sorted(
        c.removeprefix("metrics.") for c in views.prefixed(runs, "metrics", logged=True))[:2]
    by = as_list(spec.group_by) or (list(view.group_by) if view else [])
    band = spec.band or (view.band if view else "std")
    x = spec.x or (view.x if view else "step")
    smoothing = spec.smoothing if spec.smoothing is not None else (view.smoothing if view else 0.0)
    if not len(runs) or not metrics:
        return Charts(spec.title or "", [], selected.sentence + " · nothing to draw")
    with alt.data_transformers.disable_max_rows():  # (a grouped chart holds few points, but may pass 5,000)
        if by:
            missing = [c for c in by if c not in runs.columns]
            if missing:
                raise InvalidInputError(f"no run found has {', '.join(missing)} to group by")
            groups = views.group_labels(runs, by)
            frame = store.grouped_history(groups, metrics, x=x, band=band, smoothing=smoothing,
                                          points=GROUPED_POINTS)
            colours = charts.run_colours(list(dict.fromkeys(groups.values())))
            drawn: list[Any] = [charts.grouped_chart(frame, m, x, band, colours=colours) for m in metrics]
            caption = views.groups_caption(groups, frame, GROUPED_POINTS, x) + (f" Runs{selected.scope}."
                                                                             if selected.scope else "")
        else:
            shown = runs.head(spec.limit)
            names = views.series_names(shown)
            history = store.metric_history(list(shown["run_id"]), metrics)
            if smoothing:
                history = views.smooth(history, smoothing)
            drawn = [charts.history_chart(history, m, names, "timestamp" if x == "time" else "step")
                     for m in metrics]
            caption = (f"The first {spec.limit} of " if len(runs) > spec.limit else "") + selected.described
    return Charts(spec.title or "", drawn, caption)


def _value(store: StoreApi, spec: ValueSpec) -> Value:
    selected = _selected(store, spec, max_results=1 if spec.stat == "first" else None)
    runs = selected.runs
    if spec.stat == "count":
        return Value(spec.title or "", f"{len(runs):,}", selected.described)
    if spec.column not in runs.columns or not len(runs):
        return Value(spec.title or "", "–", f"{selected.described} · none has {spec.column}")
    column = runs[spec.column]
    if spec.stat == "first":
        name = views.series_names(runs.head(1))[runs["run_id"].iloc[0]]
        return Value(spec.title or "", _formatted(column.iloc[0]), f"{spec.column} of run {name}")
    numbers = pd.to_numeric(column, errors="coerce").dropna()
    result = getattr(numbers, spec.stat)() if len(numbers) else math.nan
    return Value(spec.title or "", _formatted(result),
                 f"the {spec.stat} of {spec.column} over {selected.described}")


def _ab(store: StoreApi, spec: AbSpec) -> Table:
    exp = store.ab.get(spec.experiment)
    results = exp.results()
    table = results.table
    metrics = as_list(spec.metrics)
    if metrics:
        unknown = sorted(set(metrics) - set(table["metric"]))
        if unknown:
            raise NotFoundError(f"A/B experiment {spec.experiment!r} has no metric {', '.join(unknown)}")
        table = table[table["metric"].isin(metrics)]
    caption = f"A/B experiment {spec.experiment} ({results.state}, phase {results.phase}): " \
              f"{results.recommendation}"
    if results.srm_alarm:
        caption += f" · sample-ratio mismatch (p = {results.srm_p_value:.2g}): do not trust these numbers"
    return Table(spec.title or "", table[AB_COLUMNS].reset_index(drop=True), caption)


def _formatted(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return "–" if isinstance(value, float) and math.isnan(value) else f"{value:,.6g}"
    return str(value)
