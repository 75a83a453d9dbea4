"""Human-friendly run numbers and names, derived at read time.

Run IDs are the identity; a run's number in its experiment and its default name
(``<experiment>_<n>``) are derived from the runs that exist, ordered by start time and
then ID. Two git branches that each started "run 3" therefore never conflict: after the
merge one of them is run 4, the same one on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable


def derive_run_names(
    experiment: str, runs: Iterable[tuple[float, str, str | None]]
) -> dict[str, tuple[int, str]]:
    """Map run_id to (sequence number, display name) for one experiment's runs.

    ``runs`` holds ``(start_time, run_id, requested_name)``. A missing name becomes
    ``<experiment>_<n>``; a name already taken gets ``_2``, ``_3``... appended.
    """
    result: dict[str, tuple[int, str]] = {}
    used: set[str] = set()
    for number, (_, run_id, requested) in enumerate(sorted(runs, key=lambda r: (r[0], r[1])), 1):
        base = requested or f"{experiment}_{number}"
        name, suffix = base, 2
        while name in used:
            name, suffix = f"{base}_{suffix}", suffix + 1
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
        self.runs: dict[str, tuple[float, str, str | None]] = {}
        self.names: dict[str, tuple[int, str]] = {}
        self._used: set[str] = set()
        self._last: tuple[float, str] = (float("-inf"), "")
        self.folder_state: tuple[int, int] | None = None  # (mtime_ns, size) when last listed

    def add(self, start: float, run_id: str, requested: str | None) -> tuple[int, str]:
        self.runs[run_id] = (start, run_id, requested)
        if (start, run_id) > self._last:
            number = len(self.names) + 1
            base = requested or f"{self.experiment}_{number}"
            name, suffix = base, 2
            while name in self._used:
                name, suffix = f"{base}_{suffix}", suffix + 1
            self.names[run_id] = (number, name)
            self._used.add(name)
            self._last = (start, run_id)
        else:
            self._derive_all()
        return self.names[run_id]

    def add_many(self, runs: Iterable[tuple[float, str, str | None]]) -> None:
        """Runs found at once (another process's, listed in no order): numbered all
        together, not one recomputation per run that starts before the last known."""
        added = [(start, run_id, requested) for start, run_id, requested in runs if run_id not in self.runs]
        if not added:
            return
        if min((start, run_id) for start, run_id, _ in added) > self._last:
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
