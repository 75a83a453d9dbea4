"""``mltrail ab``: plan, define, run and analyse A/B experiments of models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.text import Text

from ..errors import InvalidInputError, MltrailError
from ..query.cells import cell_text, is_missing
from ..store import Store
from .context import pass_store, store_option
from .output import Column, note, out, pairs, print_json, print_table, say


@click.group()
@store_option
def ab() -> None:
    """A/B experiments of models: power, create, list, status, start, pause, stop,
    weights, coverage and results. The router that serves them is `mltrail serve router`."""


@ab.command("power")
@click.option("--baseline", type=float, help="Conversion KPI: the control's rate, e.g. 0.10.")
@click.option("--std", type=float, help="Continuous KPI: its standard deviation.")
@click.option("--mean", type=float, help="Continuous KPI: its mean (for a relative MDE).")
@click.option("--mde", type=float, help="Minimum detectable effect (absolute unless --relative).")
@click.option("--relative", is_flag=True, help="The MDE is a share of the baseline.")
@click.option("--effect-size", type=float, help="Or a standardised effect size (Cohen's d).")
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--power", "power_", type=float, default=0.8, show_default=True)
@click.option("--split", type=float, default=0.5, show_default=True,
              help="Share of units in the treatment arm (0.1 for a 90/10 split).")
@click.option("--daily-units", type=float, help="Eligible units a day, for the duration.")
@click.option("--coverage", type=float, default=1.0, show_default=True,
              help="Share of eligible units that enter the experiment.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ab_power(baseline: float | None, std: float | None, mean: float | None, mde: float | None,
             relative: bool, effect_size: float | None, alpha: float, power_: float, split: float,
             daily_units: float | None, coverage: float, as_json: bool) -> None:
    """Minimum units per arm (and days) to detect an effect."""
    from ..ab import power as planning

    if not 0 < split < 1:
        raise InvalidInputError(f"--split must be in (0, 1), not {split}")
    ratio = split / (1 - split)
    if effect_size is not None:
        size = planning.sample_size(effect_size, alpha, power_, ratio)
    elif baseline is not None and mde is not None:
        size = planning.sample_size_conversion(baseline, mde, relative, alpha, power_, ratio)
    elif std is not None and mde is not None:
        size = planning.sample_size_continuous(std, mde, mean, relative, alpha, power_, ratio)
    else:
        raise InvalidInputError("give --effect-size, or --baseline with --mde (conversion), "
                                "or --std with --mde (continuous)")
    days = size.duration_days(daily_units, coverage) if daily_units else None
    if as_json:
        print_json({"effect_size": size.effect_size, "alpha": alpha, "power": power_,
                    "control": size.control, "treatment": size.treatment, "total": size.total,
                    "exact_control": size.exact_control, "exact_treatment": size.exact_treatment,
                    "days": days})
        return
    say(f"effect size {size.effect_size:.4f} at alpha {alpha}, power {power_}:")
    say(f"  control   {size.control:>12,} units  ({size.exact_control:,.2f})")
    say(f"  treatment {size.treatment:>12,} units  ({size.exact_treatment:,.2f})")
    say(f"  total     {size.total:>12,} units")
    if days is not None:
        say(f"  duration  {days:>12,} days at {daily_units:,.0f} units/day, coverage {coverage:.0%}")


@ab.command("create")
@click.option("--spec", "spec_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The experiment spec, a .json or .toml file.")
@click.option("--by", default=None, help="Who creates it (default: you).")
@pass_store
def ab_create(store: Store, spec_file: str, by: str | None) -> None:
    """Define an experiment from a spec file (it starts as a draft)."""
    path = Path(spec_file)
    try:
        if path.suffix == ".toml":
            import tomllib

            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            spec = orjson.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise MltrailError(f"cannot read the spec {path}: {exc}") from None
    exp = store.ab.create(spec, by=by)
    say(f"created {exp.key} (draft); minimum sample size "
        + ", ".join(f"{k} {v:,}" for k, v in exp.min_sample_size.items()))


@ab.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def ab_list(store: Store, as_json: bool) -> None:
    """Every experiment with its state and phase."""
    frame = store.ab.list()
    if as_json:
        print_json(frame)
        return
    print_table(["key", "state", "phase", "owner", "primary", "weights", "coverage", "winner"],
                ([r["key"], r["state"], r["phase"], r["owner"], r["primary"],
                  ", ".join(f"{k} {v:g}" for k, v in r["weights"].items()), f"{r['coverage']:.0%}",
                  r["winner"]] for r in frame.to_dict("records")))


@ab.command("status")
@click.argument("key")
@pass_store
def ab_status(store: Store, key: str) -> None:
    """An experiment's definition and state."""
    exp = store.ab.get(key)
    spec = exp.spec
    out.print(Text.assemble((exp.key, "bold"), f"  {exp.state}  phase {exp.phase.number} (seed {exp.phase.seed})  "
                            f"owner {spec.owner}"), highlight=False)
    say(f"H0: {spec.hypothesis.null}\nH1: {spec.hypothesis.alternative}")
    say(f"primary KPI {spec.primary.name} ({spec.primary.kind}, {spec.primary.direction} is good); "
        f"alpha {spec.alpha}, power {spec.power}, MDE {spec.mde}{' relative' if spec.mde_relative else ''}"
        f"{', sequential' if spec.sequential else ''}")
    for variant in spec.variants:
        role = " (control)" if variant.control else ""
        say(f"  {variant.name}{role}: weight {exp.weights[variant.name]:g}, "
            f"needs {exp.min_sample_size[variant.name]:,} units  {variant.model or variant.url or ''}")
    say(f"coverage {exp.coverage:.0%}")
    if exp.state == "stopped":
        say(f"decision: {exp.winner or 'no winner (control stays)'}: {exp.decision}")


def _lifecycle(name: str, doc: str) -> None:
    @ab.command(name, help=doc)
    @click.argument("key")
    @click.option("--by", default=None, help="Who does it (default: you).")
    @click.option("--reason", default=None)
    @pass_store
    def command(store: Store, key: str, by: str | None, reason: str | None) -> None:
        exp = getattr(store.ab.get(key), name)(by=by, reason=reason)
        say(f"{key}: {exp.state}")


_lifecycle("start", "Start (or resume) an experiment.")
_lifecycle("pause", "Pause an experiment: everyone gets the control; nothing is logged as exposed.")


@ab.command("stop")
@click.argument("key")
@click.option("--winner", default=None, help="The winning variant (omit: no winner).")
@click.option("--reason", required=True, help="The decision, in words.")
@click.option("--by", default=None, help="Who decides (default: you).")
@pass_store
def ab_stop(store: Store, key: str, winner: str | None, reason: str, by: str | None) -> None:
    """Stop an experiment with a decision."""
    exp = store.ab.get(key).stop(winner, reason, by=by)
    say(f"{key}: stopped, winner {exp.winner or 'none'}")


@ab.command("weights")
@click.argument("key")
@click.argument("weights", nargs=-1, required=True)
@click.option("--reason", default=None)
@click.option("--by", default=None, help="Who changes them (default: you).")
@pass_store
def ab_weights(store: Store, key: str, weights: tuple[str, ...], reason: str | None, by: str | None) -> None:
    """New weights, as VARIANT=WEIGHT pairs: starts a new phase (units are reassigned)."""
    parsed = {}
    for name, value in pairs(weights, "VARIANT=WEIGHT").items():
        try:
            parsed[name] = float(value)
        except ValueError:
            raise InvalidInputError(f"weights are VARIANT=WEIGHT pairs, not {name}={value!r}") from None
    exp = store.ab.get(key).set_weights(parsed, reason=reason, by=by)
    say(f"{key}: phase {exp.phase.number}, weights {exp.weights}")


@ab.command("coverage")
@click.argument("key")
@click.argument("coverage", type=float)
@click.option("--by", default=None, help="Who changes it (default: you).")
@pass_store
def ab_coverage(store: Store, key: str, coverage: float, by: str | None) -> None:
    """Let a share of eligible units in (no unit changes variant)."""
    exp = store.ab.get(key).set_coverage(coverage, by=by)
    say(f"{key}: coverage {exp.coverage:.0%}")


@ab.command("results")
@click.argument("key")
@click.option("--phase", type=int, default=None, help="Phase to analyse (default: current).")
@click.option("--sequential/--fixed", default=None,
              help="Always-valid intervals, or the fixed-horizon test (default: the spec's choice).")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
              help="Where the log is aggregated: DuckDB embedded, or Apache Spark (the spark extra).")
@click.option("--by", "dimension", default=None,
              help="Read the results per value of an exposure attribute (country, platform...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_store
def ab_results(store: Store, key: str, phase: int | None, sequential: bool | None, engine: str,
               dimension: str | None, as_json: bool) -> None:
    """The results page: health first, then each metric by variant, then the recommendation."""
    if dimension is not None:
        by = store.ab.get(key).results_by(dimension, phase, sequential, engine=engine)
        if as_json:
            print_json({"dimension": dimension, "table": by.table})
            return
        for segment, result in by.segments.items():
            out.print(Text.assemble((f"{dimension} = {segment}", "bold underline")), highlight=False)
            _print_results(key, result)
        if not by.segments:
            note("no units yet")
        return
    result = store.ab.get(key).results(phase, sequential, engine=engine)
    if as_json:
        print_json({"phase": result.phase, "state": result.state, "units": result.units,
                    "srm_p_value": result.srm_p_value, "srm_alarm": result.srm_alarm,
                    "crossover_units": result.crossover_units, "bad_lines": result.bad_lines,
                    "recommendation": result.recommendation, "table": result.table})
        return
    _print_results(key, result)


def _print_results(key: str, result: Any) -> None:
    """One Results as the terminal shows it: health, the table, skipped lines, the advice."""
    health = Text("SAMPLE-RATIO MISMATCH", style="red") if result.srm_alarm else Text("split OK", style="green")
    srm = "no units yet" if is_missing(result.srm_p_value) else f"p = {result.srm_p_value:.3g}"
    out.print(Text.assemble((key, "bold"), f" phase {result.phase} ({result.state}): ", health,
                            f" ({srm}), {result.crossover_units} crossover units left out; units "
                            + ", ".join(f"{k} {v:,}" for k, v in result.units.items())), highlight=False)
    rows = []
    for row in result.table.to_dict("records"):
        tested = not is_missing(row.get("p_value"))
        rows.append([row["metric"], row["variant"] + (" (control)" if row["control"] else ""),
                     f"{row['units']:,}", cell_text(row["mean"]),
                     f"{row['relative']:+.2%}" if tested else "",
                     f"{row['relative_ci_low']:+.2%} … {row['relative_ci_high']:+.2%}" if tested else "",
                     f"{row['p_value']:.4f}" if tested else "",
                     ("yes" if row["significant"] else "no") if tested else "",
                     "" if is_missing(row["progress"]) else f"{row['progress']:.0%}"])
    print_table(["metric", "variant", *(Column(c, right=True) for c in (
        "units", "mean", "lift", "95% interval", "p", "significant", "progress"))], rows)
    for bad in result.bad_lines[:5]:
        out.print(f"skipped {bad}", markup=False, highlight=False)
    say(result.recommendation)
