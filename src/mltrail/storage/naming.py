"""Human-friendly run numbers and names, derived at read time.

Run IDs are the identity; a run's number in its experiment and its default name
(``<experiment>_<n>``) are derived from the runs that exist, ordered by start time and
then ID. Two git branches that each started "run 3" therefore never conflict: after the
merge one of them is run 4, the same one on every machine.

A run mltrail starts gets a name no earlier run of its experiment has (``_2``, ``_3``...
appended), so a name finds one run. A run imported from MLflow (it carries MLflow's run
ID, :data:`IMPORTED_ID_TAG`) keeps its name as MLflow had it: there names are data, and
cross-validation folds or a grid search's trials share them. A lookup by a shared name
says which runs have it (:meth:`mltrail.tracking.tracker.Tracker.resolve_run`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

IMPORTED_ID_TAG = "mlflow.run_id"  # on a run imported from MLflow: its ID there (mltrail.migration)

NamedRun = tuple[float, str, str | None, bool]  # (start_time, run_id, requested name, name kept as it is)


def is_imported(tags: Mapping[str, str | None] | None) -> bool:
    """Whether a run with these tags came from MLflow, and so keeps its name as it was."""
    return tags is not None and tags.get(IMPORTED_ID_TAG) is not None


def _name(experiment: str, number: int, requested: str | None, kept: bool, used: set[str]) -> str:
    """A run's display name: a kept name as it is, else the requested name (or
    ``<experiment>_<n>``) with ``_2``, ``_3``... appended while an earlier run has it."""
    if kept and requested:
        return requested
    base = requested or f"{experiment}_{number}"
    name, suffix = base, 2
    while name in used:
        name, suffix = f"{base}_{suffix}", suffix + 1
    return name


def derive_run_names(experiment: str, runs: Iterable[NamedRun]) -> dict[str, tuple[int, str]]:
    """Map run_id to (sequence number, display name) for one experiment's runs.

    ``runs`` holds ``(start_time, run_id, requested_name, kept)``. A missing name becomes
    ``<experiment>_<n>``; a name already taken gets ``_2``, ``_3``... appended, unless
    ``kept`` (an imported run: its name is data, shared or not).
    """
    result: dict[str, tuple[int, str]] = {}
    used: set[str] = set()
    for number, (_, run_id, requested, kept) in enumerate(sorted(runs, key=lambda r: (r[0], r[1])), 1):
        name = _name(experiment, number, requested, kept, used)
        used.add(name)
        result[run_id] = (number, name)
    return result


class ExperimentNames:
    """The run names of one experiment as a writer sees them, kept up to date cheaply.

    A new run that starts after every known run (the usual case) is numbered and named
    in O(1), exactly as :func:`derive_run_names` would; anything else (a run from
    another process that started earlier) recomputes them all.
    """

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment
        self.runs: dict[str, NamedRun] = {}
        self.names: dict[str, tuple[int, str]] = {}
        self._used: set[str] = set()
        self._last: tuple[float, str] = (float("-inf"), "")
        self.folder_state: tuple[int, int] | None = None  # (mtime_ns, size) when last listed

    def add(self, start: float, run_id: str, requested: str | None, kept: bool = False) -> tuple[int, str]:
        self.runs[run_id] = (start, run_id, requested, kept)
        if (start, run_id) > self._last:
            number = len(self.names) + 1
            name = _name(self.experiment, number, requested, kept, self._used)
            self.names[run_id] = (number, name)
            self._used.add(name)
            self._last = (start, run_id)
        else:
            self._derive_all()
        return self.names[run_id]

    def add_many(self, runs: Iterable[NamedRun]) -> None:
        """Runs found at once (another process's, listed in no order): numbered all
        together, not one recomputation per run that starts before the last known."""
        added = [run for run in runs if run[1] not in self.runs]
        if not added:
            return
        if min((start, run_id) for start, run_id, *_ in added) > self._last:
            for run in sorted(added, key=lambda r: (r[0], r[1])):
                self.add(*run)
            return
        for run in added:
            self.runs[run[1]] = run
        self._derive_all()

    def _derive_all(self) -> None:
        self.names = derive_run_names(self.experiment, self.runs.values())
        self._used = {name for _, name in self.names.values()}
        self._last = max((r[0], r[1]) for r in self.runs.values())
