"""From exposure and feedback logs to results: compaction, then statistics.

Compaction reads only log bytes it has not read (offsets kept in the derived folder) and
folds them into one row per (phase, unit): its variant, first exposure, whether it was
seen in another variant too (crossover), and per metric the sum and count of its
feedback. From those rows come the per-variant, per-metric, per-day sufficient
statistics (count, sum, sum of squares) that the analysis uses, so it never rereads raw
events; both tables are plain Parquet that a SQL engine could query as well.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq
from filelock import FileLock

from ..compaction.manifest import write_atomic
from . import power as planning
from . import stats

if TYPE_CHECKING:
    from .experiment import Experiment

_SCHEMA = pa.schema([("type", pa.string()), ("ts", pa.float64()), ("unit", pa.string()),
                     ("variant", pa.string()), ("phase", pa.int64()), ("metric", pa.string()),
                     ("value", pa.float64())])


@dataclass
class AbTables:
    units: pd.DataFrame  # phase, unit, variant, first_ts, crossover, <metric>__sum, <metric>__count
    lines_read: int
    bytes_read: int


def compact(exp: Experiment) -> AbTables:
    """Fold new log lines of an experiment into its per-unit table (incremental)."""
    registry = exp._registry
    folder = registry.root / exp.key / "log"
    derived = registry.store.layout.cache / "ab" / exp.key
    derived.mkdir(parents=True, exist_ok=True)
    with FileLock(str(derived / "compaction.lock")):
        state_path, units_path = derived / "offsets.json", derived / "units.parquet"
        offsets: dict[str, int] = orjson.loads(state_path.read_bytes()) if state_path.exists() else {}
        units = pq.read_table(units_path).to_pandas() if units_path.exists() else _empty_units()
        chunks, read = [], 0
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            start = offsets.get(path.name, 0)
            with open(path, "rb") as handle:
                handle.seek(start)
                data = handle.read()
            whole = data[: data.rfind(b"\n") + 1]
            if whole:
                chunks.append(whole)
                offsets[path.name] = start + len(whole)
                read += len(whole)
        lines = 0
        if chunks:
            table = pajson.read_json(io.BytesIO(b"".join(chunks)), parse_options=pajson.ParseOptions(
                explicit_schema=_SCHEMA, unexpected_field_behavior="ignore"))
            lines = table.num_rows
            units = _fold(units, table.to_pandas(), exp)
            for name, frame in (("units", units), ("daily", daily_statistics(units, exp))):
                tmp = derived / f"{name}.parquet.tmp"
                pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
                os.replace(tmp, derived / f"{name}.parquet")
            write_atomic(state_path, orjson.dumps(offsets))  # after the table: never ahead of it
        return AbTables(units, lines, read)


def _empty_units() -> pd.DataFrame:
    return pd.DataFrame({"phase": pd.Series(dtype="int64"), "unit": pd.Series(dtype="str"),
                         "variant": pd.Series(dtype="str"), "first_ts": pd.Series(dtype="float64"),
                         "crossover": pd.Series(dtype="bool")})


def _fold(units: pd.DataFrame, events: pd.DataFrame, exp: Experiment) -> pd.DataFrame:
    """Merge new exposures and feedback into the per-(phase, unit) rows."""
    exposures = events[events["type"] == "exposure"]
    if len(exposures):
        first = (exposures.sort_values("ts").groupby(["phase", "unit"], sort=False)
                 .agg(variant=("variant", "first"), first_ts=("ts", "first"),
                      variants=("variant", "nunique")).reset_index())
        merged = units.merge(first, on=["phase", "unit"], how="outer", suffixes=("", "_new"))
        known = merged["variant"].notna()
        fresh = merged["variant_new"].notna()
        merged["crossover"] = (merged["crossover"].astype("boolean").fillna(False)
                               | (merged["variants"].fillna(1) > 1)
                               | (known & fresh & (merged["variant"] != merged["variant_new"])))
        merged["first_ts"] = merged[["first_ts", "first_ts_new"]].min(axis=1)
        merged["variant"] = merged["variant"].where(known, merged["variant_new"])
        units = merged.drop(columns=["variant_new", "first_ts_new", "variants"])
        units["crossover"] = units["crossover"].astype(bool)
    feedback = events[events["type"] == "feedback"]
    if len(feedback):
        # feedback belongs to the phase the unit was last exposed in; most units have one
        latest_phase = units.sort_values("phase").groupby("unit")["phase"].last()
        feedback = feedback.assign(phase=feedback["unit"].map(latest_phase))
        feedback = feedback[feedback["phase"].notna()]  # feedback from units never exposed
        sums = (feedback.groupby(["phase", "unit", "metric"])["value"].agg(["sum", "count"])
                .unstack("metric"))
        sums.columns = [f"{metric}__{kind}" for kind, metric in sums.columns]
        sums = sums.reset_index().astype({"phase": "int64"})
        units = units.merge(sums, on=["phase", "unit"], how="left", suffixes=("", "_new"))
        for column in [c for c in units.columns if c.endswith("_new")]:
            base = column.removesuffix("_new")
            units[base] = units[base].fillna(0) + units[column].fillna(0)
            units = units.drop(columns=column)
    for metric in exp.spec.metrics:
        for kind in ("sum", "count"):
            column = f"{metric.name}__{kind}"
            units[column] = units[column].fillna(0.0) if column in units else 0.0
    return units.sort_values(["phase", "unit"]).reset_index(drop=True)


def unit_values(units: pd.DataFrame, metric: str, binary: bool) -> pd.Series:
    """Each unit's KPI value: converted or not (binary), or the sum of its values."""
    total = units[f"{metric}__sum"]
    return (total > 0).astype(float) if binary else total.astype(float)


def daily_statistics(units: pd.DataFrame, exp: Experiment) -> pd.DataFrame:
    """Per phase, variant, metric and day of first exposure: count, sum, sum of squares.
    Crossover units are left out. Any engine that can GROUP BY could compute this."""
    clean = units[~units["crossover"]]
    rows = []
    day = pd.to_datetime(clean["first_ts"], unit="s", utc=True).dt.floor("D")
    for metric in exp.spec.metrics:
        values = unit_values(clean, metric.name, metric.kind == "binary")
        frame = pd.DataFrame({"phase": clean["phase"], "variant": clean["variant"], "day": day,
                              "y": values, "y2": values ** 2})
        grouped = frame.groupby(["phase", "variant", "day"]).agg(
            n=("y", "size"), sum=("y", "sum"), sum_sq=("y2", "sum")).reset_index()
        grouped.insert(2, "metric", metric.name)
        rows.append(grouped)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


@dataclass
class Results:
    """What an experiment's results page says."""

    table: pd.DataFrame  # one row per metric and variant
    srm_p_value: float
    srm_alarm: bool
    crossover_units: int
    units: dict[str, int]
    phase: int
    recommendation: str

    def __str__(self) -> str:
        return self.recommendation


def results(exp: Experiment, phase: int | None = None, sequential: bool | None = None,
            covariate: pd.Series | None = None) -> Results:
    """Analyse a phase (the current one by default) from the compacted tables.

    ``covariate``: each unit's pre-experiment value of the primary KPI (a Series indexed
    by unit id); the primary KPI is then CUPED-adjusted, which narrows its intervals by
    the factor 1 − corr² without biasing them.
    """
    units = compact(exp).units
    phase = exp.phase.number if phase is None else phase
    sequential = exp.spec.sequential if sequential is None else sequential
    in_phase = units[units["phase"] == phase]
    crossover = int(in_phase["crossover"].sum())
    daily = daily_statistics(in_phase, exp)
    names = exp.variants
    control = exp.control
    counts = {v: int(in_phase[(in_phase["variant"] == v) & ~in_phase["crossover"]].shape[0]) for v in names}
    weights = [exp.weights[v] for v in names]
    srm = stats.srm_p_value([counts[v] for v in names], weights)
    needed = exp.min_sample_size
    rows: list[dict[str, Any]] = []
    for metric in exp.spec.metrics:
        binary = metric.kind == "binary"
        sums = (daily[daily["metric"] == metric.name].groupby("variant")[["n", "sum", "sum_sq"]].sum()
                if len(daily) else pd.DataFrame(columns=["n", "sum", "sum_sq"]))
        arms = {v: stats.Arm(*(float(sums.loc[v, c]) if v in sums.index else 0.0
                               for c in ("n", "sum", "sum_sq"))) for v in names}
        test_as_binary = binary
        if covariate is not None and metric == exp.spec.primary:
            arms = _cuped_arms(in_phase, metric.name, binary, covariate, names)
            test_as_binary = False  # adjusted values are no proportion: use their variance
        treatments = [v for v in names if v != control]
        metric_rows = []
        for variant in names:
            arm = arms[variant]
            n = int(arm.n)
            row = {"metric": metric.name, "kind": metric.kind, "variant": variant,
                   "control": variant == control, "units": n,
                   "mean": float(arm.mean) if n else np.nan,
                   "std": float(np.sqrt(arm.var)) if n > 1 else np.nan,
                   "progress": n / needed[variant] if needed.get(variant) else np.nan}
            if variant != control and n > 1 and arms[control].n > 1:
                with np.errstate(all="ignore"):
                    comparison = stats.compare(arms[control], arm, test_as_binary, exp.spec.alpha,
                                               sequential)
                row.update(difference=float(comparison.difference), ci_low=float(comparison.ci_low),
                           ci_high=float(comparison.ci_high), relative=float(comparison.relative),
                           relative_ci_low=float(comparison.relative_ci_low),
                           relative_ci_high=float(comparison.relative_ci_high),
                           p_value=float(comparison.p_value),
                           power_at_mde=_power_at_mde(exp, int(arms[control].n), n)
                           if metric == exp.spec.primary else np.nan)
            metric_rows.append(row)
        tested = [r for r in metric_rows if "p_value" in r]
        if tested:
            adjusted, _ = stats.holm([r["p_value"] for r in tested], exp.spec.alpha)
            for row, p in zip(tested, adjusted):
                row["p_holm"] = float(p)
                # every number shown must agree: the test, the difference's interval and the
                # lift's (delta-method, wider: it carries the control mean's noise too), so a
                # "significant" lift never comes with an interval that crosses zero
                difference_clear = row["ci_low"] > 0 or row["ci_high"] < 0
                lift_clear = row["relative_ci_low"] > 0 or row["relative_ci_high"] < 0
                row["significant"] = bool(p < exp.spec.alpha and difference_clear and lift_clear)
        rows.extend(metric_rows)
    table = pd.DataFrame(rows)
    recommendation = recommend(exp, table, srm, crossover)
    return Results(table, srm, srm < stats.SRM_ALARM_P, crossover, counts, phase, recommendation)


def _cuped_arms(units: pd.DataFrame, metric: str, binary: bool, covariate: pd.Series,
                names: list[str]) -> dict[str, stats.Arm]:
    clean = units[~units["crossover"]]
    y = unit_values(clean, metric, binary).to_numpy()
    x = clean["unit"].map(covariate).fillna(float(covariate.mean())).to_numpy(dtype=float)
    variants = clean["variant"].to_numpy()
    parts = [stats.CovariateArm(stats.Arm.of(y[variants == v]), float(x[variants == v].sum()),
                                float((x[variants == v] ** 2).sum()),
                                float((x[variants == v] * y[variants == v]).sum())) for v in names]
    return dict(zip(names, stats.cuped(parts)))


def _power_at_mde(exp: Experiment, n_control: int, n_treatment: int) -> float:
    spec = exp.spec
    if spec.primary.kind == "binary":
        target = spec.baseline * (1 + spec.mde) if spec.mde_relative else spec.baseline + spec.mde
        from statsmodels.stats.proportion import proportion_effectsize

        effect = abs(float(proportion_effectsize(target, spec.baseline)))
        binary = True
    else:
        mde = spec.mde * spec.baseline if spec.mde_relative else spec.mde
        effect, binary = mde / spec.std, False
    if n_control < 2 or n_treatment < 2:
        return 0.0
    return planning.achieved_power(effect, n_control, n_treatment / n_control, spec.alpha, binary)


def recommend(exp: Experiment, table: pd.DataFrame, srm_p: float, crossover: int) -> str:
    """A plain-words reading of the primary KPI, honest about health and peeking."""
    if srm_p < stats.SRM_ALARM_P:
        return (f"Investigate: sample-ratio mismatch (p = {srm_p:.2g}): the split of units does not "
                "match the weights, so no other number here can be trusted.")
    primary = exp.spec.primary
    rows = table[(table["metric"] == primary.name) & ~table["control"]] if len(table) else table
    if not len(rows) or "significant" not in rows or rows["significant"].isna().all():
        return "Keep running: not enough units in every variant to compare yet."
    good = 1 if primary.direction == "increase" else -1
    winners = rows[rows["significant"].fillna(False) & (np.sign(rows["difference"]) == good)]
    losers = rows[rows["significant"].fillna(False) & (np.sign(rows["difference"]) == -good)]
    full = bool((table[table["metric"] == primary.name]["progress"] >= 1).all())
    may_decide = full or exp.spec.sequential
    if may_decide and len(winners):
        best = winners.iloc[(winners["difference"] * good).argmax()]
        return (f"Ship {best['variant']}: {primary.name} {best['relative']:+.1%} against "
                f"{exp.control} (95% interval {best['relative_ci_low']:+.1%} to "
                f"{best['relative_ci_high']:+.1%}).")
    if may_decide and len(losers) == len(rows):
        return f"Keep {exp.control}: every treatment is significantly worse on {primary.name}."
    if full:  # (sequential but short of the planned size with nothing significant: keep going)
        return (f"No difference: at the planned sample size no treatment changed {primary.name} "
                "by more than the noise; keep the control unless another reason favours a change.")
    progress = float(table[table["metric"] == primary.name]["progress"].min())
    note = " Looking early: a fixed-horizon result is only final at 100%." if len(winners) or len(losers) else ""
    return f"Keep running: {progress:.0%} of the planned sample size.{note}"
