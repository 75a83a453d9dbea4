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
