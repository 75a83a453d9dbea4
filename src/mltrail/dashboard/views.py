"""Tables the dashboard shows, as pandas DataFrames (no Streamlit here)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..query.cells import cell_text, is_missing
from ..tracking.system_metrics import PREFIX as SYSTEM_PREFIX

STATUS_COLOURS = {"RUNNING": "#1f77b4", "FINISHED": "#2ca02c", "FAILED": "#d62728",
                  "KILLED": "#ff7f0e", "CRASHED": "#9467bd"}
STATUS_BADGES = {status: f"● {status}" for status in STATUS_COLOURS}


STYLED_MAX_ROWS = 1_000  # a Styler renders every cell's text: ~2 s for 10,000 runs


def styled(table: pd.DataFrame) -> Any:
    """The run table with its status badges coloured (a pandas Styler, which Streamlit
    draws); above STYLED_MAX_ROWS rows the plain table, to stay fast."""
    if len(table) > STYLED_MAX_ROWS:
        return table

    def colour(badge: str) -> str:
        return f"color: {STATUS_COLOURS.get(str(badge).removeprefix('● '), 'inherit')}"
    styled = table.style.map(colour, subset=["status"]).format(precision=4, na_rep="")
    if "duration (s)" in table:  # seconds to a tenth, not 0.5000
        styled = styled.format("{:.1f}", subset=["duration (s)"], na_rep="")
    return styled


PAGE_ROWS = 500  # runs a page of the Runs table; MLflow's UI loads 100 at a time


def page_count(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE_ROWS))


def page_of(runs: pd.DataFrame, page: int) -> pd.DataFrame:
    """Page ``page`` (from 1) of the runs in their order (newest first, unless sorted):
    a browser shows 10,000 rows no better than 500, only later (~0.5 s)."""
    return runs.iloc[(page - 1) * PAGE_ROWS:page * PAGE_ROWS]


def short_ids(run_ids: Iterable[str]) -> dict[str, str]:
    """Each run ID's start, long enough (8 characters or more) that no two of ``run_ids``
    share it: an ID leads with its time, so runs started within a second (an imported grid
    search's folds) share their first 8 characters, within a millisecond their first 10."""
    ids = list(dict.fromkeys(run_ids))
    for width in (8, 10, 12, 16):
        if len({run_id[:width] for run_id in ids}) == len(ids):
            return {run_id: run_id[:width] for run_id in ids}
    return {run_id: run_id for run_id in ids}


def series_names(runs: pd.DataFrame) -> dict[str, str]:
    """Each run's name in a chart's legend or a picker: its name, with enough of its ID
    where runs share a name (a chart would draw them as one series, a picker show one
    choice twice). Runs imported from MLflow keep its names, shared ones too."""
    names = runs["run_name"].fillna(runs["run_id"].str[:10])
    shared = names.duplicated(keep=False)
    ids = runs["run_id"].map(short_ids(runs["run_id"]))
    return dict(zip(runs["run_id"], names.where(~shared, names + " · " + ids)))


def prefixed(frame: pd.DataFrame, prefix: str, logged: bool = False) -> list[str]:
    """The ``params.*`` or ``metrics.*`` columns of a search_runs frame; with ``logged``,
    only those some of its runs have a value in (an axis nobody has draws nothing)."""
    return [c for c in frame.columns if c.startswith(prefix + ".") and (not logged or frame[c].notna().any())]


DEFAULT_COLUMNS = 6  # of the varying params, and of the run's own metrics


def default_columns(runs: pd.DataFrame) -> list[str]:
    """The Runs table's columns before anyone chooses: the params that differ between the
    runs, then the runs' own metrics. ``system/*`` metrics (sampled while a run trained)
    are left out, else their eight columns, sorting before ``val/…``, fill the defaults."""
    varying = [c for c in prefixed(runs, "params") if runs[c].nunique() > 1]
    own = [c for c in prefixed(runs, "metrics") if not c.startswith(f"metrics.{SYSTEM_PREFIX}")]
    return varying[:DEFAULT_COLUMNS] + own[:DEFAULT_COLUMNS]


GENERIC_FILTER = "metrics.accuracy > 0.9 and params.model = 'baseline'"  # a store with no metric or param yet


def filter_example(runs: pd.DataFrame) -> str:
    """The filter box's example, written with a metric and a param these runs have (a
    metric above its median, a param at its most common value), so that it parses and
    means something on this store; a generic one on a store with neither."""
    # (only columns with a finite value: the median of none warns "Mean of empty slice" on pandas 2.2)
    finite = {c: pd.to_numeric(runs[c], errors="coerce").replace([math.inf, -math.inf], math.nan).dropna()
              for c in default_columns(runs) if c.startswith("metrics.")}
    medians = {c: values.median() for c, values in finite.items() if len(values)}
    metrics = list(medians)
    params = [c for c in prefixed(runs, "params") if runs[c].notna().any()]
    if not metrics and not params:
        return GENERIC_FILTER
    parts = [f"{_filter_key(metrics[0])} > {cell_text(float(medians[metrics[0]]))}"] if metrics else []
    if params:
        value = str(runs[params[0]].dropna().mode().iloc[0]).replace("'", "''")
        parts.append(f"{_filter_key(params[0])} = '{value}'")
    return " and ".join(parts)


def order_example(runs: pd.DataFrame) -> str:
    """The order box's example: the first of the runs' own metrics, highest first."""
    metrics = [c for c in default_columns(runs) if c.startswith("metrics.")]
    return f"{_filter_key(metrics[0])} DESC" if metrics else "attributes.start_time DESC"


def _filter_key(column: str) -> str:
    """A column as the filter language names it: a key with spaces or quotes in backticks."""
    kind, _, key = column.partition(".")
    return column if _PLAIN_KEY.fullmatch(key) else f"{kind}.`{key}`"


_PLAIN_KEY = re.compile(r"[^\s=!<>()',\"`]+")  # (the filter grammar's unquoted key)


def counted(number: int, noun: str) -> str:
    """``1 run``, ``2 runs``, ``1,500 runs``: a count as the dashboard shows it."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def run_table(runs: pd.DataFrame, columns: list[str], children: pd.Series | None = None) -> pd.DataFrame:
    """The Runs page table: badge, name, start (to the second), duration (a running run's
    so far), then the chosen columns, and the run's ID last (the index, which pages hide,
    is the full ID: a ticked row names its run)."""
    now = pd.Timestamp.now(tz="UTC")
    running = runs["status"] == "RUNNING"
    end = runs["end_time"].where(~running, now) if len(runs) else runs["end_time"]
    duration = (end - runs["start_time"]).dt.total_seconds()
    table = pd.DataFrame({  # arrays, not Series: the table is indexed by run_id instead
        "status": runs["status"].map(lambda s: STATUS_BADGES.get(s, s)).to_numpy(),
        "name": runs["run_name"].to_numpy(),
        "experiment": runs["experiment"].to_numpy(),
        "start": runs["start_time"].dt.tz_convert(None).dt.floor("s").to_numpy(),
        "duration (s)": duration.round(1).to_numpy(),
    }, index=runs["run_id"].to_numpy())
    if children is not None and len(children):  # child runs per parent (``parent_run_id`` counts)
        table.insert(2, "children", runs["run_id"].map(children).fillna(0).astype(int).to_numpy())
    for column in columns:
        table[column] = runs[column].to_numpy()
    table["run"] = runs["run_id"].str[:10].to_numpy()
    table.index.name = "run_id"
    return table


MISSING = "—"  # a cell nothing was logged in (compare_table's too)


def blank_missing(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every column that has a missing cell as text (query.cells' one
    rendering, missing as MISSING): Streamlit draws a missing cell as "None". Columns
    without a gap keep their type (and their numeric sort)."""
    gaps = [c for c in table.columns if table[c].isna().any()]
    if not gaps:
        return table
    out = table.copy()
    for column in gaps:
        out[column] = table[column].map(lambda value: cell_text(value, missing=MISSING))
    return out


def percent_missing(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` (ratios) as percent text where they have a gap, missing as MISSING
    (a control's lift); without a gap they stay numbers, for the page's percent format."""
    out = table.copy()
    for column in columns:
        if column in out and out[column].isna().any():
            out[column] = out[column].map(lambda value: MISSING if is_missing(value) else f"{value:.2%}")
    return out


def smooth(history: pd.DataFrame, weight: float) -> pd.DataFrame:
    """Exponential moving average of ``value`` per run and key (TensorBoard's smoothing,
    debiased so the first points are not pulled toward zero); ``weight`` in [0, 1)."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), not {weight}")
    if weight == 0 or history.empty:
        return history
    out = history.copy()
    out["value"] = (history.groupby(["run_id", "key"], sort=False)["value"]
                    .transform(lambda s: s.ewm(alpha=1 - weight, adjust=True).mean()))
    return out


def compare_table(details: dict[str, dict[str, Any]], differences_only: bool) -> pd.DataFrame:
    """Params and latest metrics of several runs side by side, one column per run."""
    columns: dict[str, dict[str, Any]] = {}
    ids = short_ids(info["run"]["run_id"] for info in details.values())
    for info in details.values():
        label = f"{info['run']['run_name']} ({ids[info['run']['run_id']]})"
        values: dict[str, Any] = {}
        for row in info["params"].to_dict("records"):
            values[f"params.{row['key']}"] = row["value"]
        for row in info["metrics"].to_dict("records"):
            values[f"metrics.{row['key']}"] = row["value"]
        columns[label] = values
    table = pd.DataFrame(columns)
    if table.empty:
        return table
    table = table.sort_index()
    if differences_only and len(table.columns) > 1:
        same = table.apply(lambda row: len({_comparable(v) for v in row}) == 1, axis=1)
        table = table[~same]
    return table.map(lambda value: cell_text(value, missing=MISSING))  # the text every table shows


def _comparable(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def group_labels(runs: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """Each run's group by the values of ``columns`` (``params.*``/``tags.*``): ``lr=0.1``,
    or ``lr=0.1 · seed=3`` for several; a run without a value is in ``lr=(none)``."""
    labels = pd.Series("", index=runs.index)
    for i, column in enumerate(columns):  # (by column, not by run: 10,000 runs' labels in milliseconds)
        labels = labels + (" · " if i else "") + column.split(".", 1)[-1] + "=" + runs[column].map(_label)
    return dict(zip(runs["run_id"], labels))


def _label(value: object) -> str:
    return "(none)" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def grouping_columns(runs: pd.DataFrame) -> list[str]:
    """What runs can be grouped by: the params and tags (``mlflow.*`` and mltrail's own
    bookkeeping tags aside) with at least two values among them, and no more groups than
    a chart can tell apart by colour."""
    found = []
    for column in [*prefixed(runs, "params"), *prefixed(runs, "tags")]:
        if column.startswith(("tags.mlflow.", "tags.mltrail.")):
            continue
        count = runs[column].nunique(dropna=False)
        if 1 < count <= MAX_GROUPS:
            found.append(column)
    return found


MAX_GROUPS = 20  # the palette's colours: a group each


def groups_caption(groups: dict[str, str], frame: pd.DataFrame, points: int, x: str = "step") -> str:
    """What a grouped chart shows, said under it: runs, groups and what was averaged."""
    text = f"{counted(len(groups), 'run')} in {counted(len(set(groups.values())), 'group')}: each line the " \
           "mean of its group's runs, the band around it as chosen"
    if not frame.empty and _bucketed(frame, points, x):
        text += f"; each run's points averaged into at most {points:,} buckets of x first (not every point is sent)"
    return text + "."


def _bucketed(frame: pd.DataFrame, points: int, x: str) -> bool:
    """Whether a curve of ``grouped_history``'s frame averaged steps together: by step, its
    buckets hold 2**k steps once its steps span ``points`` or more (a bucket of one step has
    that step as its x); by time, once it fills its ``points`` buckets."""
    curves = frame.groupby(["key", "group"])["x"].agg(["min", "max", "size"])
    if x == "time":
        return bool((curves["size"] >= points).any())
    return bool((curves["max"] - curves["min"] >= points).any())


def optimization_history(trials: pd.DataFrame, metric: str, direction: str) -> pd.DataFrame:
    """An Optuna study's trials (its child runs, with ``tags.optuna.trial_number``) as the
    optimization history: ``trial, state, value, best`` (the best value so far among the
    complete trials, by ``direction``: "minimize" or "maximize"), by trial number."""
    frame = pd.DataFrame({
        "trial": pd.to_numeric(trials.get("tags.optuna.trial_number"), errors="coerce"),
        "state": trials.get("tags.optuna.state", pd.Series(index=trials.index, dtype=object)),
        "value": pd.to_numeric(trials.get(metric, pd.Series(index=trials.index, dtype=float)), errors="coerce"),
        "run_id": trials["run_id"]}).dropna(subset=["trial"]).sort_values("trial").reset_index(drop=True)
    complete = frame["value"].where(frame["state"] == "COMPLETE")
    frame["best"] = complete.cummin() if direction == "minimize" else complete.cummax()
    frame["trial"] = frame["trial"].astype(int)
    return frame


HISTOGRAM_STEPS = 100  # columns a histogram heatmap draws: a chart's width of them


def histogram_cells(histograms: pd.DataFrame, key: str, steps: int = HISTOGRAM_STEPS) -> tuple[pd.DataFrame, int]:
    """One key's histograms (``store.histograms`` rows) as a heatmap's cells: ``step, low,
    high, count, share`` (the bin's share of its step's values), empty bins left out; at
    most ``steps`` steps, evenly spread, the last always in. Also: how many steps it has."""
    rows = histograms[histograms["key"] == key].sort_values("step")
    total = len(rows)
    if total > steps:
        rows = rows.iloc[sorted({round(i * (total - 1) / (steps - 1)) for i in range(steps)})]
    cells = []
    for step, edges, counts in zip(rows["step"], rows["edges"], rows["counts"]):
        edges, counts = np.asarray(edges, dtype=float), np.asarray(counts, dtype=float)
        whole = counts.sum()
        kept = counts > 0
        cells.append(pd.DataFrame({"step": int(step), "low": edges[:-1][kept], "high": edges[1:][kept],
                                   "count": counts[kept].astype(np.int64),
                                   "share": counts[kept] / whole if whole else 0.0}))
    columns = ["step", "low", "high", "count", "share"]
    return (pd.concat(cells, ignore_index=True) if cells else pd.DataFrame(columns=columns)), total


def numeric(series: pd.Series) -> pd.Series:
    """A param column as numbers where every value parses, else as it is."""
    numbers = pd.to_numeric(series, errors="coerce")
    return numbers if numbers.notna().sum() == series.notna().sum() else series
