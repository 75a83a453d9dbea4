"""The dense ``metrics`` lines an import writes for an MLflow run's points.

Built by the importer for a run it appends to, and by the reader processes
(:mod:`.mlflow_reader`) for a run new to the store, whose lines depend on nothing but its
points: there the seqs count from 1 and the importer shifts them past the run's other
events (:func:`shifted`), so the parent does not rebuild and check every point.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..storage import events as ev
from ..tracking.run import dense_line
from .mlflow_source import Point

POINTS_PER_LINE = 20_000  # a metric history of millions of points is many lines, not one huge one

PointKey = tuple[str, int, int, Any, Any, Any]  # (key, ms, step, value or its name, dataset name, digest)


def point_key(key: str, point: Point) -> PointKey:
    """What tells one point of a run from another, as a run file's points are counted."""
    return (key, point.timestamp_ms, point.step, ev.nonfinite_name(point.value) or point.value,
            point.dataset_name, point.dataset_digest)


def metric_lines(run_id: str, first_seq: int, metrics: dict[str, list[Point]],
                 have: Counter[PointKey] | None = None) -> tuple[list[dict[str, Any]], int]:
    """The dense lines of the points of ``metrics`` that ``have`` (a run file's) lacks, oldest
    first, numbered from ``first_seq``, each checked as a logged point's; and their count."""
    remaining = Counter(have) if have else None
    new: list[tuple[str, float, int, float, Any]] = []  # dense_line's points
    for key, points in metrics.items():
        for p in points:
            if remaining:  # (a new run holds none: no identity to look up)
                identity = point_key(key, p)
                if remaining[identity] > 0:
                    remaining[identity] -= 1
                    continue
            linked = p.dataset_name is not None and p.dataset_digest is not None
            marks = (False, p.dataset_name, p.dataset_digest) if linked else False
            new.append((key, p.value, p.step, p.timestamp_ms / 1000, marks))
    new.sort(key=lambda point: point[3])
    lines = []
    for first in range(0, len(new), POINTS_PER_LINE):
        line = dense_line(run_id, first_seq + first, new[first:first + POINTS_PER_LINE])
        ev.EVENT_ADAPTER.validate_python(line)  # keys, steps and times checked as a logged point's are
        lines.append(line)
    return lines, len(new)


def shifted(lines: list[dict[str, Any]], by: int) -> list[dict[str, Any]]:
    """Lines numbered from 1 (a reader's), numbered from ``by + 1``."""
    for line in lines:
        line["seq"] += by
    return lines
