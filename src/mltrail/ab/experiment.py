"""Experiments: their definition, lifecycle and assignment, stored as lifecycle events.

States: draft → running ⇄ paused → stopped (with a decision). Changing weights starts a
new phase with a new hashing seed; changing coverage does not move any unit. The state
is always the replay of the lifecycle events, so every router and dashboard that reads
the store agrees on it.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ..compaction.ablog import AbLog, compact_ab_log
from ..compaction.abstats import MetricRule, dimensions, phase_statistics, segment_statistics, unit_values
from ..config import current_user
from ..errors import (
    AlreadyExistsError,
    InvalidInputError,
    MltrailError,
    NotFoundError,
    SkippedLinesWarning,
    WrongStateError,
)
from ..storage import ab_events as ev
from ..storage.eventfiles import EventFolder, write_event_file
from ..storage.ids import new_id
from ..storage.layout import FOLDER_NAME, Layout
from ..storage.locks import held
from . import assign, power
from .logging import ExposureLog

if TYPE_CHECKING:
    from .analysis import DimensionResults, Results

_KEY = re.compile(FOLDER_NAME)

# which lifecycle event each state allows
_ALLOWED = {
    "draft": {"ab_started", "ab_stopped", "ab_phase", "ab_coverage"},
    "running": {"ab_paused", "ab_stopped", "ab_phase", "ab_coverage"},
    "paused": {"ab_started", "ab_stopped", "ab_phase", "ab_coverage"},
    "stopped": set(),
}
_NEXT_STATE = {"ab_started": "running", "ab_paused": "paused", "ab_stopped": "stopped"}


@dataclass
class Phase:
    number: int
    seed: str
    weights: dict[str, float]
    started: float


@dataclass
class ExperimentState:
    spec: ev.ExperimentSpec
    min_sample_size: dict[str, int]
    state: str = "draft"
    phases: list[Phase] = field(default_factory=list)  # every phase so far, the current one last
    coverage: float = 1.0
    winner: str | None = None
    decision: str | None = None
    created: float = 0.0
    started: float | None = None
    stopped: float | None = None
    ignored: list[str] = field(default_factory=list)  # events a race made invalid
    # events that contradict the spec (written by hand or past the lifecycle methods):
    # skipped, and each said in a warning when the experiment is read
    invalid: list[str] = field(default_factory=list)


def event_name(model: type[ev.AbEvent]) -> str:
    return model.model_fields["type"].default.removeprefix("ab_")


def contradiction(event: ev.AbEvent, spec: ev.ExperimentSpec) -> str | None:
    """Why ``event`` cannot apply to the experiment ``spec`` defines, or None. The writer
    refuses such an event and a reader skips one: a phase whose weights named 'contrl'
    broke every read of its experiment (KeyError: 'control')."""
    variants = [v.name for v in spec.variants]
    if isinstance(event, ev.NewPhase) and set(event.weights) != set(variants):
        return f"its weights name {sorted(event.weights)}, not the variants {variants}"
    if isinstance(event, ev.Stopped) and event.winner is not None and event.winner not in variants:
        return f"its winner {event.winner!r} is not one of the variants {variants}"
    return None


def replay(events: Sequence[ev.AbEvent]) -> ExperimentState:
    """The experiment's state after its lifecycle events, in order."""
    if not events or not isinstance(events[0], ev.Created):
        raise InvalidInputError("an experiment's first lifecycle event must be its creation")
    created = events[0]
    weights = {v.name: v.weight for v in created.spec.variants}
    state = ExperimentState(created.spec, created.min_sample_size, coverage=created.spec.coverage,
                            phases=[Phase(1, created.seed, weights, created.ts)], created=created.ts)
    for event in events[1:]:
        problem = contradiction(event, created.spec)
        if problem is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event.ts))
            state.invalid.append(f"a lifecycle event by {event.by!r} at {when} ({event.type}) was skipped: {problem}")
            continue
        if event.type not in _ALLOWED[state.state]:
            state.ignored.append(f"{event.type} while {state.state}")
            continue
        if isinstance(event, ev.NewPhase):
            state.phases.append(Phase(len(state.phases) + 1, event.seed, dict(event.weights), event.ts))
        elif isinstance(event, ev.CoverageChanged):
            state.coverage = event.coverage
        else:
            state.state = _NEXT_STATE[event.type]
            if isinstance(event, ev.Started) and state.started is None:
                state.started = event.ts
            if isinstance(event, ev.Stopped):
                state.winner, state.decision, state.stopped = event.winner, event.reason, event.ts
    return state


class Experiment:
    """One experiment as it stands; its methods append lifecycle events.

    >>> exp = store.ab.get("ranker-v2")        # doctest: +SKIP
    >>> exp.assign("user-42")                  # doctest: +SKIP
    'treatment'
    """

    def __init__(self, registry: AbRegistry, key: str, state: ExperimentState) -> None:
        self._registry = registry
        self.key = key
        self._state = state
        variants = state.spec.variants
        self.variants = [v.name for v in variants]
        self._ranges = assign.bucket_ranges(
            len(variants), state.coverage, [self.phase.weights[n] for n in self.variants], strict=True)

    def __repr__(self) -> str:
        return f"<Experiment {self.key!r} {self.state} phase {self.phase.number}>"

    @property
    def spec(self) -> ev.ExperimentSpec:
        return self._state.spec

    @property
    def state(self) -> str:
        """draft, running, paused or stopped."""
        return self._state.state

    @property
    def phases(self) -> list[Phase]:
        """Every phase so far, oldest first; each has its own seed and weights."""
        return list(self._state.phases)

    @property
    def phase(self) -> Phase:
        """The current phase."""
        return self._state.phases[-1]

    def get_phase(self, number: int | None = None) -> Phase:
        """Phase ``number`` (the current one when None); a NotFoundError names the phases."""
        if number is None:
            return self.phase
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(self._state.phases):
            raise NotFoundError(f"experiment {self.key!r} has no phase {number!r}; its phases are "
                                f"1 to {len(self._state.phases)}")
        return self._state.phases[number - 1]

    @property
    def coverage(self) -> float:
        return self._state.coverage

    @property
    def winner(self) -> str | None:
        return self._state.winner

    @property
    def decision(self) -> str | None:
        """Why it was stopped (the reason given at stop)."""
        return self._state.decision

    @property
    def control(self) -> str:
        return self._state.spec.control

    @property
    def started(self) -> float | None:
        """When it was first started (epoch seconds), or None while a draft."""
        return self._state.started

    @property
    def stopped(self) -> float | None:
        return self._state.stopped

    @property
    def min_sample_size(self) -> dict[str, int]:
        """Units each variant needs at the current phase's weights."""
        return minimum_sample_size(self.spec, self.phase.weights)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.phase.weights)

    # -- assignment --------------------------------------------------------------------

    def _index(self, unit_id: str) -> int:
        if not isinstance(unit_id, str) or not unit_id:
            raise InvalidInputError(f"unit id must be a non-empty string, not {unit_id!r}")
        namespace = self.spec.namespace
        if namespace is not None and not assign.in_namespace(unit_id, namespace):
            return -1
        x = assign.hash(self.phase.seed, unit_id, 2)
        return assign.choose_variation(x, self._ranges)

    def assign(self, unit_id: str) -> str | None:
        """The variant of a unit in the current phase, or None when it is not in the
        experiment (outside coverage or namespace). The same answer a GrowthBook SDK
        gives with this phase's seed, weights and coverage."""
        index = self._index(unit_id)
        return None if index < 0 else self.variants[index]

    def assign_batch(self, unit_ids: Sequence[str]) -> list[str | None]:
        """:meth:`assign` for many units at once, vectorised (for simulations)."""
        indices = assign.assign_batch(self.phase.seed, list(unit_ids), self._ranges)
        if self.spec.namespace is not None:
            inside = np.array([assign.in_namespace(u, self.spec.namespace) for u in unit_ids])
            indices = np.where(inside, indices, -1)
        return [None if i < 0 else self.variants[i] for i in indices]

    def serving(self, unit_id: str) -> str:
        """The variant that answers a unit's request: its assignment while running; the
        control otherwise, or the winner once stopped with one."""
        if self.state == "running":
            return self.assign(unit_id) or self.control
        if self.state == "stopped" and self.winner:
            return self.winner
        return self.control

    # -- logging -----------------------------------------------------------------------

    @property
    def log(self) -> ExposureLog:
        """This process's :class:`~mltrail.ab.logging.ExposureLog` for the experiment."""
        return self._registry.log(self.key)

    def log_exposure(self, unit_id: str, variant: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Record that a unit was served a variant (buffered; see ``exp.log.flush()``),
        under this object's phase: the phase whose seed and weights :meth:`assign` used,
        even if the weights were changed elsewhere since this object was read.
        ``attributes`` ({"country": "FR", "platform": "ios"}) let results be read by
        dimension: ``exp.results(by="country")``."""
        self.log.log_exposure(unit_id, variant, phase=self.phase.number, attributes=attributes)

    def log_feedback(self, unit_id: str, metric: str, value: float) -> None:
        """Record a KPI value for a unit (buffered)."""
        self.log.log_feedback(unit_id, metric, value)

    # -- analysis ----------------------------------------------------------------------

    def results(self, phase: int | None = None, sequential: bool | None = None,
                covariate: pd.Series | None = None, engine: str = "duckdb") -> Results:
        """The results page: per metric and variant, health checks and a recommendation
        (:class:`mltrail.ab.analysis.Results`), for ``phase`` (the current one by
        default) at that phase's own weights. ``covariate`` (a Series of each unit's
        pre-experiment KPI) turns on CUPED for the primary KPI. ``engine``: where the
        log is aggregated, ``"duckdb"`` (embedded) or ``"spark"`` (the active Spark
        session, else a local one; ``pip install 'mltrail[spark]'``). Flushes this
        process's log first."""
        return self._registry.results(self, phase, sequential, covariate, engine)

    def results_by(self, dimension: str, phase: int | None = None, sequential: bool | None = None,
                   engine: str = "duckdb") -> DimensionResults:
        """The results per value of ``dimension``, an attribute logged with the exposures
        (``log_exposure(unit, variant, attributes={"country": "FR"})``; a unit counts under
        its first exposure's value, ``(none)`` without one)."""
        return self._registry.results_by(self, dimension, phase, sequential, engine)

    def dimensions(self) -> list[str]:
        """The attribute names logged with this experiment's exposures: what
        :meth:`results_by` can read by."""
        return self._registry.dimensions(self)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, *, by: str | None = None, reason: str | None = None) -> Experiment:
        return self._registry.append(self.key, ev.Started, by=by, reason=reason)

    def pause(self, *, by: str | None = None, reason: str | None = None) -> Experiment:
        return self._registry.append(self.key, ev.Paused, by=by, reason=reason)

    def stop(self, winner: str | None, reason: str, *, by: str | None = None) -> Experiment:
        """Stop with a decision: the winning variant, or None (keep the control), and why."""
        if winner is not None and winner not in self.variants:
            raise InvalidInputError(f"unknown variant {winner!r}; variants are {self.variants}")
        if not reason or not reason.strip():
            raise InvalidInputError("stopping needs a reason (the decision, in words)")
        return self._registry.append(self.key, ev.Stopped, winner=winner, by=by, reason=reason)

    def set_weights(self, weights: Mapping[str, float], reason: str | None = None, *,
                    by: str | None = None) -> Experiment:
        """New weights start a new phase with a new seed: every unit is reassigned, and
        analysis uses the new phase by default, so earlier exposures cannot bias it."""
        if set(weights) != set(self.variants):
            raise InvalidInputError(f"weights must name exactly the variants {self.variants}, "
                                    f"not {sorted(weights)}")
        assign.check_weights([weights[n] for n in self.variants])
        return self._registry.append(self.key, ev.NewPhase, weights=dict(weights),
                                      seed=f"{self.key}:{new_id()}", reason=reason, by=by)

    def set_coverage(self, coverage: float, *, by: str | None = None) -> Experiment:
        """Let more or fewer units in; no unit already in changes variant."""
        if not 0 < coverage <= 1:
            raise InvalidInputError(f"coverage must be in (0, 1], not {coverage}")
        return self._registry.append(self.key, ev.CoverageChanged, coverage=coverage, by=by)


def _rules(exp: Experiment) -> list[MetricRule]:
    """How the engine makes each metric's per-unit values (the primary first)."""
    return [MetricRule(m.name, m.kind == "binary", m.window_seconds, tuple(m.feedback)) for m in exp.spec.metrics]


def minimum_sample_size(spec: ev.ExperimentSpec, weights: Mapping[str, float] | None = None) -> dict[str, int]:
    """Units each variant needs: for every treatment against the control, at the weights."""
    weights = dict(weights) if weights is not None else {v.name: v.weight for v in spec.variants}
    control = spec.control
    needed = {name: 0 for name in weights}
    for name, weight in weights.items():
        if name == control or weight == 0:
            continue
        ratio = weight / weights[control]
        if spec.primary.kind == "binary":
            assert spec.baseline is not None  # (ExperimentSpec requires it of a binary primary KPI)
            size = power.sample_size_conversion(spec.baseline, spec.mde, spec.mde_relative,
                                                spec.alpha, spec.power, ratio)
        else:
            assert spec.std is not None  # (ExperimentSpec requires it of a continuous primary KPI)
            size = power.sample_size_continuous(spec.std, spec.mde, spec.baseline, spec.mde_relative,
                                                spec.alpha, spec.power, ratio)
        needed[control] = max(needed[control], size.control)
        needed[name] = size.treatment
    return needed


class AbRegistry:
    """The store's A/B experiments: ``store.ab``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.root = layout.root / "ab"
        self._logs: dict[str, ExposureLog] = {}
        self._folders: dict[str, EventFolder] = {}

    def open_log(self, key: str) -> ExposureLog | None:
        """This process's exposure log of an experiment (its unflushed events, its counts
        per variant), or None if this process has logged nothing for it."""
        return self._logs.get(key)

    def log(self, key: str) -> ExposureLog:
        """This process's exposure log of an experiment, opened on first use."""
        log = self._logs.get(key)
        if log is None:
            exp = self.get(key)

            def state() -> tuple[bool, int]:
                current = self.get(key)
                return current.state == "running", current.phase.number

            log = self._logs[key] = ExposureLog(key, self.log_folder(key), exp.variants,
                                                exp.spec.feedback_names, state)
        return log

    def log_folder(self, key: str) -> Path:
        """Where the experiment's exposure and feedback segments are."""
        return self.root / key / "log"

    def log_tables(self, exp: Experiment, rebuild: bool = False) -> AbLog:
        """The experiment's log, compacted (incremental; see :mod:`mltrail.compaction.ablog`)."""
        tables = compact_ab_log(self.log_folder(exp.key), self.layout.cache / "ab" / exp.key, rebuild=rebuild,
                                label=self.layout.relative(self.log_folder(exp.key)))
        if tables.new_bad_lines:
            first = tables.new_bad_lines[0]
            warnings.warn(SkippedLinesWarning(
                f"{len(tables.new_bad_lines)} line(s) of the log of A/B experiment {exp.key!r} could not be "
                f"read and were skipped, first {first}; results() lists them in bad_lines"), stacklevel=3)
        return tables

    def results(self, exp: Experiment, phase: int | None = None, sequential: bool | None = None,
                covariate: pd.Series | None = None, engine: str = "duckdb") -> Results:
        """:meth:`Experiment.results`, here: this process's log flushed, then the compacted log analysed."""
        from .analysis import results

        chosen = exp.get_phase(phase)
        log = self.open_log(exp.key)
        if log is not None:
            log.flush()
        compacted = self.log_tables(exp)
        starts = [p.started for p in exp.phases]
        rules = _rules(exp)
        statistics = phase_statistics(compacted, chosen.number, starts, rules, engine)
        primary = rules[0]  # (spec.metrics: the primary first)
        return results(exp, statistics, chosen, sequential, covariate,
                       lambda: unit_values(compacted, chosen.number, starts, primary, engine),
                       [str(b) for b in compacted.bad_lines])

    def results_by(self, exp: Experiment, dimension: str, phase: int | None = None, sequential: bool | None = None,
                   engine: str = "duckdb") -> DimensionResults:
        """:meth:`Experiment.results_by`, here."""
        from .analysis import DimensionResults, results

        if not isinstance(dimension, str) or not dimension:
            raise InvalidInputError(f"a dimension is an exposure attribute's name, not {dimension!r}")
        chosen = exp.get_phase(phase)
        log = self.open_log(exp.key)
        if log is not None:
            log.flush()
        compacted = self.log_tables(exp)
        rules = _rules(exp)
        segments = segment_statistics(compacted, chosen.number, [p.started for p in exp.phases], rules, dimension,
                                      engine)
        bad = [str(b) for b in compacted.bad_lines]
        return DimensionResults(dimension, {segment: results(exp, statistics, chosen, sequential, bad_lines=bad)
                                            for segment, statistics in segments.items()})

    def dimensions(self, exp: Experiment) -> list[str]:
        """:meth:`Experiment.dimensions`, here."""
        log = self.open_log(exp.key)
        if log is not None:
            log.flush()
        return dimensions(self.log_tables(exp))

    def fingerprint(self, key: str) -> tuple[int, int]:
        """Changes whenever the experiment's lifecycle or logs do (a cache key): the
        number of lifecycle files and the bytes logged."""
        folder = self.root / key
        lifecycle = len(list((folder / "lifecycle").glob("*.jsonl")))
        logs = self.log_folder(key)
        logged = sum(p.stat().st_size for p in logs.glob("*.jsonl")) if logs.is_dir() else 0
        return lifecycle, logged

    def _folder(self, key: str) -> Path:
        return self.root / key / "lifecycle"

    def lifecycle(self, key: str) -> list[ev.AbEvent]:
        """The experiment's lifecycle events, in order: one listdir, and only files not seen before are read
        (a router and each exposure log re-check the state every second). Only keys that
        exist are remembered: a stream of unknown keys costs nothing to keep."""
        folder = self._folders.get(key)
        if folder is None:
            if not isinstance(key, str) or not _KEY.fullmatch(key):  # (a path trick, or too long to be a file)
                raise NotFoundError(f"no A/B experiment {key!r} in {self.layout.root}: keys are letters, "
                                    "digits, '_', '-', '.' (at most 100)")
            folder = EventFolder(self._folder(key), ev.AB_EVENT_ADAPTER, "lifecycle")
        events = folder.events()
        if not events:
            known = ", ".join(repr(k) for k in self.keys()) or "none yet"
            raise NotFoundError(f"no A/B experiment {key!r} in {self.layout.root}", f"(experiments: {known})")
        self._folders[key] = folder
        return events

    def create(self, spec: ev.ExperimentSpec | Mapping[str, Any], *, by: str | None = None) -> Experiment:
        """Define an experiment (state: draft). The spec is validated first; nothing is
        written if it is wrong."""
        try:
            spec = spec if isinstance(spec, ev.ExperimentSpec) else ev.ExperimentSpec.model_validate(spec)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"invalid experiment spec: {problems}") from None
        with self._lock(spec.key):
            if self._folder(spec.key).is_dir():
                raise AlreadyExistsError(f"experiment {spec.key!r} already exists")
            event = ev.Created(ts=time.time(), experiment=spec.key, by=by or current_user(), spec=spec,
                               min_sample_size=minimum_sample_size(spec), seed=spec.key)
            self._write(spec.key, event)
        return self.get(spec.key)

    def get(self, key: str) -> Experiment:
        state = replay(self.lifecycle(key))
        for problem in state.invalid:
            warnings.warn(SkippedLinesWarning(f"A/B experiment {key!r}: {problem}"), stacklevel=2)
        return Experiment(self, key, state)

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "lifecycle").is_dir())

    def exists(self, key: str) -> bool:
        """True when an experiment of this key is defined."""
        return (self.root / key / "lifecycle").is_dir()

    def list(self) -> pd.DataFrame:
        """Every experiment: key, state, phase, owner, primary KPI, variants and weights."""
        rows = []
        for key in self.keys():
            try:
                exp = self.get(key)
            except MltrailError as exc:  # one unreadable experiment never hides the others
                warnings.warn(SkippedLinesWarning(f"A/B experiment {key!r} left out: {exc}"), stacklevel=2)
                continue
            rows.append({"key": key, "state": exp.state, "phase": exp.phase.number,
                         "owner": exp.spec.owner, "primary": exp.spec.primary.name,
                         "weights": exp.weights, "coverage": exp.coverage, "winner": exp.winner,
                         "min_sample_size": sum(exp.min_sample_size.values())})
        return pd.DataFrame(rows, columns=["key", "state", "phase", "owner", "primary", "weights",
                                           "coverage", "winner", "min_sample_size"])

    def _lock(self, key: str) -> AbstractContextManager[None]:
        return held(self.layout.lock_file(f"ab-{key}"), f"A/B experiment {key!r}")

    def append(self, key: str, model: type[ev.AbEvent], **fields: Any) -> Experiment:
        """Check the transition against the current state and the spec, then write the
        event (the lifecycle methods of :class:`Experiment` call this, after their own
        checks: call them, not this)."""
        fields["by"] = fields.get("by") or current_user()
        reserved = sorted({"ts", "experiment", "type", "v"} & set(fields))
        if reserved:
            raise InvalidInputError(f"a lifecycle change cannot set {', '.join(reserved)}")
        with self._lock(key):
            current = replay(self.lifecycle(key))
            try:
                event = model(ts=time.time(), experiment=key, **fields)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise InvalidInputError(f"invalid {event_name(model)} change of {key!r}: {problems}") from None
            problem = contradiction(event, current.spec)
            if problem is not None:
                raise InvalidInputError(f"invalid {event_name(model)} change of {key!r}: {problem}")
            if event.type not in _ALLOWED[current.state]:
                verb = event.type.removeprefix("ab_")
                raise WrongStateError(f"experiment {key!r} is {current.state}: it cannot be {verb}")
            self._write(key, event)
        if key in self._logs:  # this process's log sees the change now, not a second later
            self._logs[key].recheck_state()
        return self.get(key)

    def _write(self, key: str, event: ev.AbEvent) -> None:
        write_event_file(self._folder(key), new_id(), event)
