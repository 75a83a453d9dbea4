"""Optuna studies as runs: a study is a run, each trial a child run of it.

    import mltrail.optuna
    tracking = mltrail.optuna.callback(store, "churn-tuning")
    study.optimize(objective, n_trials=100, callbacks=[tracking])
    tracking.end()                     # (or: with mltrail.optuna.callback(...) as tracking:)

Each finished trial (Optuna calls its callbacks as each ends) becomes a child run of the
study's run: its params (group ``optuna``), its intermediate values as the metric
``intermediate_value`` by step (what the pruner read), its objective as ``value`` (or the
``metric_names`` given; a multi-objective study's as ``value_0``, ``value_1``...), and its
state: COMPLETE ends FINISHED, PRUNED ends KILLED saying the step it was pruned at (tag
``optuna.pruned_step``), FAIL ends FAILED. The study's run gets ``value`` and
``best_value`` by trial number: the optimization history. Each trial's run keeps the
params' distributions (tag ``optuna.distributions``), so :func:`load_study` gives an Optuna
``Study`` back from the store alone, with no Optuna storage: for
``optuna.importance.get_param_importances`` and Optuna's plots. The dashboard's Study page
draws the history, the best trial, the importances and the parallel coordinates.
"""

from __future__ import annotations

import atexit
import json
import math
import threading
import warnings
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ..errors import InvalidInputError, NotFoundError
from ..store import Store
from ..tracking.run import Run

if TYPE_CHECKING:
    import optuna

STUDY_TAG = "optuna.study_name"  # on the study's run and each trial's
ROLE_TAG = "optuna.role"  # "study" or "trial"
DIRECTIONS_TAG = "optuna.directions"  # on the study's run: ["minimize"], ...
METRICS_TAG = "optuna.metric_names"  # on the study's run: the objectives' metric names
TRIAL_TAG = "optuna.trial_number"
STATE_TAG = "optuna.state"
DISTRIBUTIONS_TAG = "optuna.distributions"  # {param: Optuna's JSON of its distribution}
PRUNED_STEP_TAG = "optuna.pruned_step"
INTERMEDIATE = "intermediate_value"
PARAM_GROUP = "optuna"
_ENDS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


class MltrailCallback:
    """Optuna's callback (``study.optimize(..., callbacks=[this])``): see the module."""

    def __init__(self, store: Store | None, experiment: str | None, study_run: Run | None,
                 metric_names: Sequence[str] | None) -> None:
        self.store = store
        self.experiment = experiment
        self.study_run = study_run
        self.owns_run = study_run is None  # started here: ended here
        self.metric_names = list(metric_names) if metric_names else None
        self.lock = threading.Lock()  # (n_jobs > 1: Optuna calls back from its threads)
        self.best: list[float] | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with self.lock:
            parent = self._study_run(study)
            names = self._names(study)
            state = trial.state.name
            if state not in _ENDS:  # RUNNING or WAITING: not a trial's end (never called so)
                return
            store = self._store()
            run = store.start_run(self.experiment or parent.experiment, name=f"trial-{trial.number}",
                                  parent=parent.id, log_git=False, log_packages=False, log_system=False,
                                  log_command=False, tags={
                                      STUDY_TAG: study.study_name, ROLE_TAG: "trial", TRIAL_TAG: trial.number,
                                      STATE_TAG: state, DISTRIBUTIONS_TAG: json.dumps(_distributions(trial))})
            try:
                if trial.params:
                    run.log_params(trial.params, group=PARAM_GROUP)
                for step, value in sorted(trial.intermediate_values.items()):
                    run.log_metric(INTERMEDIATE, float(value), step=step)
                values = trial.values or []
                for name, value in zip(names, values):
                    run.log_metric(name, float(value), step=trial.last_step or 0)
                if state == "PRUNED":
                    run.set_tag(PRUNED_STEP_TAG, trial.last_step)
            except BaseException:
                run.end("FAILED", error="mltrail could not log this trial")
                raise
            error = f"pruned at step {trial.last_step}" if state == "PRUNED" else None
            run.end(_ENDS[state], error=error if state != "FAIL" else _failure(trial))
            if values and state == "COMPLETE":
                for name, value in zip(names, values):
                    parent.log_metric(name, float(value), step=trial.number)
                if len(values) == 1:
                    best = study.best_value
                    parent.log_metric("best_value", float(best), step=trial.number)

    def end(self) -> None:
        """End the study's run (FINISHED), if this callback started it."""
        with self.lock:
            if self.study_run is not None and self.owns_run:
                self.study_run.end()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.study_run is not None and self.owns_run:
            if exc is None:
                self.end()
            else:
                self.study_run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED",
                                   error=f"{type(exc).__name__}: {exc}"[:4000])

    def _store(self) -> Store:
        if self.store is None:
            self.store = Store()
        return self.store

    def _study_run(self, study: optuna.Study) -> Run:
        if self.study_run is None:
            names = self._names(study)
            self.study_run = self._store().start_run(
                self.experiment or study.study_name, name=study.study_name, log_git=True, log_packages=True,
                tags={STUDY_TAG: study.study_name, ROLE_TAG: "study",
                      DIRECTIONS_TAG: json.dumps([d.name.lower() for d in study.directions]),
                      METRICS_TAG: json.dumps(names)})
            atexit.register(self.end)  # (a script that never calls end(): the study's run ends with it)
        return self.study_run

    def _names(self, study: optuna.Study) -> list[str]:
        count = len(study.directions)
        if self.metric_names is None:
            self.metric_names = ["value"] if count == 1 else [f"value_{i}" for i in range(count)]
        if len(self.metric_names) != count:
            raise InvalidInputError(f"metric_names names {len(self.metric_names)} objectives; the study has {count}")
        return self.metric_names


def callback(store: Store | None = None, experiment: str | None = None, *, study_run: Run | None = None,
             metric_names: Sequence[str] | None = None) -> MltrailCallback:
    """A callback for ``study.optimize(..., callbacks=[...])`` that logs each trial as a child
    run of the study's run, into ``experiment`` (default: the study's name) of ``store``
    (default: ``mltrail.Store()``). ``study_run``: a run of yours to hang the trials under
    (else one named after the study is started at the first trial, and ended by
    :meth:`MltrailCallback.end`, the ``with`` block, or the interpreter's exit)."""
    return MltrailCallback(store, experiment, study_run, metric_names)


def load_study(store: Store, study_run: str) -> optuna.Study:
    """The Optuna study a run of this callback's holds (``study_run``: its ID or name), in
    memory: its trials' params, distributions, values and states, for Optuna's importances
    and plots."""
    import optuna
    import pandas as pd
    from optuna.distributions import json_to_distribution

    info = store.get_run(study_run)
    parent, tags = info["run"], info["tags"]
    if tags.get(ROLE_TAG) != "study":
        raise NotFoundError(f"run {study_run!r} is not an Optuna study's run (no {ROLE_TAG}=study tag)")
    directions = json.loads(tags.get(DIRECTIONS_TAG, '["minimize"]'))
    names = json.loads(tags.get(METRICS_TAG, '["value"]'))
    runs = store.search_runs(parent["experiment"], filter=f"attributes.parent_run_id = '{parent['run_id']}'",
                             view="all")
    history = store.metric_history(list(runs["run_id"]), [INTERMEDIATE])
    steps: dict[str, dict[int, float]] = {}
    for run_id, step, value in zip(history["run_id"], history["step"], history["value"]):
        steps.setdefault(run_id, {})[int(step)] = float(value)
    study = optuna.create_study(directions=directions, study_name=tags.get(STUDY_TAG))
    trials = runs[runs[f"tags.{ROLE_TAG}"] == "trial"] if f"tags.{ROLE_TAG}" in runs else runs.iloc[:0]
    order = pd.to_numeric(trials.get(f"tags.{TRIAL_TAG}"), errors="coerce") if len(trials) else None
    for row in (trials.assign(_order=order).sort_values("_order").to_dict("records") if len(trials) else []):
        try:  # (a child run that is no trial is left out; a trial whose tags were edited by hand too)
            distributions = {name: json_to_distribution(text)
                             for name, text in json.loads(row[f"tags.{DISTRIBUTIONS_TAG}"]).items()}
            params = {name: distribution.to_external_repr(distribution.to_internal_repr(
                _typed(row.get(f"params.{name}"), distribution))) for name, distribution in distributions.items()}
            state = optuna.trial.TrialState[row[f"tags.{STATE_TAG}"]]
        except (KeyError, TypeError, ValueError) as exc:
            warnings.warn(f"run {row['run_id']} ({row.get('run_name')}) of study {parent['run_name']!r} is left "
                          f"out: its trial tags do not say its params' distributions and state ({exc!r})",
                          stacklevel=2)
            continue
        values = [row.get(f"metrics.{name}") for name in names]
        reported = steps.get(row["run_id"], {})
        study.add_trial(optuna.trial.create_trial(  # (a pruned trial's value: its last report, as Optuna keeps it)
            params=params, distributions=distributions, state=state, intermediate_values=reported,
            values=None if any(v is None or math.isnan(v) for v in values) else [float(v) for v in values]))
    return study


def _typed(text: Any, distribution: Any) -> Any:
    """A param as mltrail keeps it (text) as its distribution's value."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        by_text = {str(choice): choice for choice in distribution.choices}
        return by_text.get(str(text), text)
    if isinstance(distribution, IntDistribution):
        return int(float(text))
    return float(text)


def _distributions(trial: optuna.trial.FrozenTrial) -> dict[str, str]:
    from optuna.distributions import distribution_to_json

    return {name: distribution_to_json(distribution) for name, distribution in trial.distributions.items()}


def _failure(trial: optuna.trial.FrozenTrial) -> str:
    reason = trial.system_attrs.get("fail_reason")
    return str(reason)[:4000] if reason else "the objective failed"
