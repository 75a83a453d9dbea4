"""From an experiment's sufficient statistics to results: intervals, tests, health
checks and a recommendation.

The statistics come from an engine (:mod:`mltrail.compaction.abstats`): per variant,
metric and day of first exposure the count, sum and sum of squares of the units' values,
the units per variant and the crossover units of one phase. Nothing here reads a log or
a unit: the same numbers from DuckDB or Spark give the same results.

Every number of a phase comes from that phase: its units, its weights (for the
sample-ratio check and the planned sample size) and its feedback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..compaction.abstats import PhaseStatistics
from . import power as planning
from . import stats

if TYPE_CHECKING:
    from .experiment import Experiment, Phase


# the results table: one row per metric and variant; the comparison columns are empty
# for the control and for a treatment that cannot be compared yet
RESULT_COLUMNS = ["metric", "kind", "variant", "control", "units", "mean", "std", "progress", "difference",
                  "ci_low", "ci_high", "relative", "relative_ci_low", "relative_ci_high", "p_value",
                  "power_at_mde", "p_holm", "significant"]


@dataclass
class Results:
    """What an experiment's results page says, for one phase."""

    table: pd.DataFrame  # one row per metric and variant
    daily: pd.DataFrame  # per variant, metric and day of first exposure: n, sum, sum_sq
    srm_p_value: float  # NaN while no unit is in
    srm_alarm: bool
    crossover_units: int
    units: dict[str, int]
    phase: int
    state: str  # the experiment's state when analysed
    recommendation: str
    bad_lines: list[str] = field(default_factory=list)  # log lines skipped, with file and line

    def __str__(self) -> str:
        return self.recommendation


@dataclass
class DimensionResults:
    """Results read by a dimension (an exposure attribute): one :class:`Results` per value,
    each with its own units, health checks and tests (no correction across segments:
    read them as a breakdown, not as more chances to find a winner)."""

    dimension: str
    segments: dict[str, Results]

    @property
    def table(self) -> pd.DataFrame:
        """Every segment's results table, a ``segment`` column first."""
        if not self.segments:
            return pd.DataFrame(columns=["segment", *RESULT_COLUMNS])
        return pd.concat([r.table.assign(segment=segment)[["segment", *RESULT_COLUMNS]]
                          for segment, r in self.segments.items()], ignore_index=True)


def results(exp: Experiment, statistics: PhaseStatistics, phase: Phase, sequential: bool | None = None,
            covariate: pd.Series | None = None, primary_values: Callable[[], pd.DataFrame] | None = None,
            bad_lines: list[str] | None = None) -> Results:
    """Analyse one phase of an experiment from its sufficient statistics.

    ``covariate``: each unit's pre-experiment value of the primary KPI (a Series indexed
    by unit id); the primary KPI is then CUPED-adjusted, which narrows its intervals by
    the factor 1 − corr² without biasing them. It needs each unit's value of the primary
    KPI: ``primary_values()`` gives them (``unit, variant, value``).
    """
    from .experiment import minimum_sample_size

    sequential = exp.spec.sequential if sequential is None else sequential
    crossover = statistics.crossover_units
    daily = statistics.daily
    names = exp.variants
    control = exp.control
    counts = {v: int(statistics.units.get(v, 0)) for v in names}
    srm = stats.srm_p_value([counts[v] for v in names], [phase.weights[v] for v in names]) \
        if sum(counts.values()) else float("nan")
    needed = minimum_sample_size(exp.spec, phase.weights)
    rows: list[dict[str, Any]] = []
    for metric in exp.spec.metrics:
        binary = metric.kind == "binary"
        sums = (daily[daily["metric"] == metric.name].groupby("variant")[SUMS].sum()
                if len(daily) else pd.DataFrame(columns=SUMS))
        totals = {v: [float(sums.loc[v, c]) if v in sums.index else 0.0 for c in SUMS] for v in names}
        if metric.kind == "ratio":
            metric_rows = _ratio_rows(exp, metric, totals, needed, sequential)
            rows.extend(_with_holm(exp, metric_rows))
            continue
        arms = {v: stats.Arm(*totals[v][:3]) for v in names}
        test_as_binary = binary
        if covariate is not None and metric == exp.spec.primary and sum(counts.values()) > 0 and primary_values:
            arms = _cuped_arms(primary_values(), covariate, names)
            test_as_binary = False  # adjusted values are no proportion: use their variance
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
                row.update(_comparison_columns(comparison),
                           power_at_mde=_power_at_mde(exp, int(arms[control].n), n)
                           if metric == exp.spec.primary else np.nan)
            metric_rows.append(row)
        rows.extend(_with_holm(exp, metric_rows))
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)  # every column, even before any unit
    # true, false, or <NA> (the control; too few units): one nullable type, which Arrow
    # (a server's answer) keeps
    table["significant"] = table["significant"].astype("boolean")
    alarm = bool(srm < stats.SRM_ALARM_P)  # NaN (no units) is no alarm
    recommendation = recommend(exp, table, srm, sequential, phase)
    return Results(table, daily, srm, alarm, crossover, counts, phase.number, exp.state, recommendation,
                   list(bad_lines or []))


SUMS = ["n", "sum", "sum_sq", "sum_y", "sum_y_sq", "sum_xy"]  # the daily statistics summed per variant


def _comparison_columns(comparison: stats.Comparison) -> dict[str, float]:
    return {"difference": float(comparison.difference), "ci_low": float(comparison.ci_low),
            "ci_high": float(comparison.ci_high), "relative": float(comparison.relative),
            "relative_ci_low": float(comparison.relative_ci_low),
            "relative_ci_high": float(comparison.relative_ci_high), "p_value": float(comparison.p_value)}


def _ratio_rows(exp: Experiment, metric: Any, totals: dict[str, list[float]], needed: dict[str, int],
                sequential: bool) -> list[dict[str, Any]]:
    """A ratio metric's rows: each arm's Σx / Σy, its std as the linearised per-unit
    value's (√(n·Var R)), and the delta-method comparison with the control."""
    arms = {v: stats.RatioArm(n=t[0], sum_x=t[1], sum_x_sq=t[2], sum_y=t[3], sum_y_sq=t[4], sum_xy=t[5])
            for v, t in totals.items()}  # (in the order of SUMS)
    control = arms[exp.control]
    rows = []
    for variant, arm in arms.items():
        n = int(arm.n)
        usable = n > 1 and arm.sum_y != 0
        row = {"metric": metric.name, "kind": metric.kind, "variant": variant, "control": variant == exp.control,
               "units": n, "mean": arm.ratio if usable else np.nan,
               "std": float(np.sqrt(n * arm.ratio_var)) if usable else np.nan,
               "progress": n / needed[variant] if needed.get(variant) else np.nan, "power_at_mde": np.nan}
        if variant != exp.control and usable and control.n > 1 and control.sum_y != 0:
            with np.errstate(all="ignore"):
                row.update(_comparison_columns(stats.compare_ratio(control, arm, exp.spec.alpha, sequential)))
        rows.append(row)
    return rows


def _with_holm(exp: Experiment, metric_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One metric's rows with Holm-adjusted p-values across its treatments, and whether
    each is significant: the test, the difference's interval and the lift's must agree."""
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
    return metric_rows


def _cuped_arms(units: pd.DataFrame, covariate: pd.Series, names: list[str]) -> dict[str, stats.Arm]:
    """Arms of the CUPED-adjusted primary KPI from each unit's value (``unit, variant,
    value``) and its covariate (the mean covariate for a unit without one)."""
    y = units["value"].to_numpy(dtype=float)
    x = units["unit"].map(covariate).fillna(float(covariate.mean())).to_numpy(dtype=float)
    variants = units["variant"].to_numpy()
    parts = [stats.CovariateArm(stats.Arm.of(y[variants == v]), float(x[variants == v].sum()),
                                float((x[variants == v] ** 2).sum()),
                                float((x[variants == v] * y[variants == v]).sum())) for v in names]
    return dict(zip(names, stats.cuped(parts)))


def _power_at_mde(exp: Experiment, n_control: int, n_treatment: int) -> float:
    spec = exp.spec
    if spec.primary.kind == "binary":
        assert spec.baseline is not None  # (ExperimentSpec requires it of a binary primary KPI)
        target = spec.baseline * (1 + spec.mde) if spec.mde_relative else spec.baseline + spec.mde
        from statsmodels.stats.proportion import proportion_effectsize

        effect = abs(float(proportion_effectsize(target, spec.baseline)))
        binary = True
    else:
        assert spec.std is not None  # (ExperimentSpec requires it of a continuous primary KPI)
        if spec.mde_relative:
            assert spec.baseline is not None  # (minimum_sample_size refused the spec at creation without it)
            mde = spec.mde * spec.baseline
        else:
            mde = spec.mde
        effect, binary = mde / spec.std, False
    if n_control < 2 or n_treatment < 2:
        return 0.0
    return planning.achieved_power(effect, n_control, n_treatment / n_control, spec.alpha, binary)


def recommend(exp: Experiment, table: pd.DataFrame, srm_p: float, sequential: bool, phase: Phase) -> str:
    """A plain-words reading of the primary KPI, honest about health, peeking and state:
    a stopped experiment states its decision; an earlier phase says it has ended."""
    reading = _reading(exp, table, srm_p, sequential)
    primary = table[table["metric"] == exp.spec.primary.name] if len(table) else table
    progress = float(primary["progress"].min()) if len(primary) and primary["progress"].notna().any() else 0.0
    if phase.number < exp.phase.number:
        return f"Phase {phase.number} ended when phase {phase.number + 1} began. {reading}"
    if exp.state != "stopped":
        return reading
    decided = f"Stopped: {exp.winner} won" if exp.winner else "Stopped: no winner, the control stays"
    text = f"{decided}. The decision: {(exp.decision or '').strip().rstrip('.')}."
    if srm_p < stats.SRM_ALARM_P:
        text += f" Warning: its split failed the sample-ratio check (p = {srm_p:.2g})."
    if progress < 1 and not sequential:
        text += (f" Warning: it was stopped at {progress:.0%} of the planned sample size, before a "
                 "fixed-horizon test is final: its intervals are wider than planned and an early "
                 "look overstates significance.")
    return f"{text} The data: {_finding(exp, table)}"


def _finding(exp: Experiment, table: pd.DataFrame) -> str:
    """What the primary KPI's numbers say, without advice."""
    primary = exp.spec.primary
    rows = table[(table["metric"] == primary.name) & ~table["control"]] if len(table) else table
    if not len(rows) or "p_value" not in rows or rows["p_value"].isna().all():
        return "too few units to compare."
    parts = []
    for row in rows.to_dict("records"):
        if pd.isna(row.get("p_value")):
            continue
        verdict = "significant" if row["significant"] else "not significant"
        parts.append(f"{row['variant']} {primary.name} {row['relative']:+.1%} against {exp.control} "
                     f"(95% interval {row['relative_ci_low']:+.1%} to {row['relative_ci_high']:+.1%}, "
                     f"p = {row['p_value']:.2g}, {verdict})")
    return "; ".join(parts) + "."


def _reading(exp: Experiment, table: pd.DataFrame, srm_p: float, sequential: bool) -> str:
    if srm_p < stats.SRM_ALARM_P:
        return (f"Investigate: sample-ratio mismatch (p = {srm_p:.2g}): the split of units does not "
                "match the weights, so no other number here can be trusted.")
    primary = exp.spec.primary
    units = int(table["units"].sum()) if len(table) else 0
    if units == 0:
        return "Keep running: no units yet."
    rows = table[(table["metric"] == primary.name) & ~table["control"]] if len(table) else table
    if not len(rows) or "significant" not in rows or rows["significant"].isna().all():
        return "Keep running: not enough units in every variant to compare yet."
    good = 1 if primary.direction == "increase" else -1
    significant = rows["significant"].astype("boolean").fillna(False).astype(bool)
    winners = rows[significant & (np.sign(rows["difference"]) == good)]
    losers = rows[significant & (np.sign(rows["difference"]) == -good)]
    full = bool((table[table["metric"] == primary.name]["progress"] >= 1).all())
    may_decide = full or sequential
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
