"""The tracking part of a store: start runs, and read them back through the derived tables.

It knows the store's layout and blobs and nothing of A/B experiments, the registry or
features; :class:`mltrail.Store` composes it with them.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..config import CRASH_AFTER_SECONDS, DIFF_MAX_BYTES, FLUSH_EVENTS, current_user
from ..errors import (AmbiguousRunError, InvalidInputError, NotFoundError, SkippedLinesWarning, StoreCorruptError,
                      WrongStateError)
from ..storage import events as ev
from ..storage.blobs import BlobStore
from ..storage.eventfiles import StopRequest, write_event_file
from ..storage.eventlog import read_events, read_first_event
from ..storage.ids import new_id
from ..storage.fields import name_problem
from ..storage.layout import Layout, check_key, experiment_dirname, stat_signature
from ..storage.naming import ExperimentNames, is_imported
from . import capture, system_metrics
from .curation import Curation
from .experiments import ExperimentCatalog
from .logged_models import LoggedModels
from .run import PARENT_TAG, Run, enclosing_run, register

# Writing a run needs none of the reading side (compaction, pyarrow's datasets, pandas):
# it is imported by the first read, so that a script that only logs starts fast.
if TYPE_CHECKING:
    import pandas as pd

    from ..compaction.compact import CompactionResult
    from ..compaction.reader import Progress
    from ..compaction.manifest import Manifest
    from ..query.grouped import Band, XAxis
    from ..query.search import RunIndex

DEFAULT_EXPERIMENT = "Default"


class Tracker:
    """Runs of one store root: ``store.start_run``, ``store.search_runs`` and friends
    (:class:`mltrail.Store` hands these calls here).

    ``crash_after`` (seconds, default ``$MLTRAIL_CRASH_AFTER_SECONDS`` or 120): a
    RUNNING run with no event for that long reads as CRASHED.
    """

    def __init__(self, layout: Layout, blobs: BlobStore, crash_after: float | None = None) -> None:
        self.layout = layout
        self.root = layout.root
        self.blobs = blobs
        self.crash_after = CRASH_AFTER_SECONDS.get(crash_after)
        self._names: dict[str, ExperimentNames] = {}
        self._lock = threading.Lock()
        self.curation = Curation(self)
        # experiments as MLflow knows them: IDs, tags, created before a run (mltrail.mlflow_store)
        self.catalog = ExperimentCatalog(layout, self._first_starts)
        # MLflow 3's logged models: a run's models with their files (mltrail.mlflow_store)
        self.logged_models = LoggedModels(layout, blobs)
        # told of each run this tracker starts or resumes, wherever it is started from (a
        # store behind a server registers the run's upload here: autologging's child runs too)
        self.on_start: Callable[[Run], None] | None = None

    # -- writing ---------------------------------------------------------------------

    def start_run(self, experiment: str = DEFAULT_EXPERIMENT, *, name: str | None = None,
                  description: str | None = None, experiment_description: str | None = None,
                  tags: dict[str, Any] | None = None, log_git: bool = True,
                  log_command: bool = True, log_system: bool = True,
                  log_packages: bool = True, run_id: str | None = None, stop: str = "flag",
                  log_system_metrics: bool | None = None, parent: str | None = None) -> Run:
        """Start a run in ``experiment`` (created on first use) and return it.

        ``name`` defaults to ``<experiment>_<n>``; a name taken in the experiment gets
        ``_2``, ``_3``... The ``log_*`` switches turn off what is captured at start:
        git commit/branch/dirty/diff, the command line, the system, installed packages.
        ``run_id`` resumes an existing run instead (see :meth:`resume_run`).

        ``stop`` says what a request to stop the run (``mltrail stop``, the dashboard) does:
        ``"flag"`` sets ``run.stop_requested`` for the training loop to check;
        ``"raise"`` also makes the next ``log_*`` call raise :class:`RunStopRequested`.
        Either way a run asked to stop ends KILLED, with who asked and why.

        ``parent`` (a run ID, prefix or name) makes the run a child of that run: a sweep's
        trials, cross-validation folds. A run started inside another's ``with`` block is
        its child without saying so. The link is the tag ``mltrail.parent_run_id``, shown
        as ``parent_run_id`` by :meth:`search_runs` (``attributes.parent_run_id = '...'``).

        ``log_system_metrics`` (default ``$MLTRAIL_SYSTEM_METRICS``) samples CPU, memory,
        disk, network and GPUs into ``system/...`` metrics while the run lasts (see
        :mod:`mltrail.tracking.system_metrics`).
        """
        if stop not in ("flag", "raise"):
            raise InvalidInputError(f"stop must be 'flag' or 'raise', not {stop!r}")
        if run_id is not None:
            run = self.resume_run(run_id)
            run.stop_mode = stop
            if system_metrics.wanted(log_system_metrics):
                run.monitor = system_metrics.SystemMonitor(run, self.layout.root)
            return run
        exp_dir = experiment_dirname(experiment)  # validates the name
        for kind, given in (("experiment", experiment), ("run", name)):
            problem = None if given is None else name_problem(given)
            if problem:
                raise InvalidInputError(f"{kind} name {given!r} {problem}")
        checked_tags = {check_key("tag", k): str(v) for k, v in (tags or {}).items()}
        if parent is not None:
            checked_tags[PARENT_TAG] = self.resolve_run(parent)
        else:
            enclosing = enclosing_run(self.layout.root)
            if enclosing is not None:
                checked_tags[PARENT_TAG] = enclosing.id
        self.layout.ensure()
        run_id = new_id()
        started = ev.RunStarted(ts=time.time(), run=run_id, experiment=experiment,
                                experiment_description=experiment_description, name=name,
                                description=description, tags=checked_tags)
        first_line = ev.dump(started)  # a value no file can hold fails here, before any file exists
        number, display = self._reserve_name(experiment, exp_dir, started)
        run = Run(self, run_id, experiment, display, number,
                  self.layout.run_file(experiment, run_id), FLUSH_EVENTS.get())
        self._names[exp_dir].folder_state = stat_signature(run.path.parent)  # our file is in it
        run.started = started.ts
        run._pending.append(first_line)
        run.stop_mode = stop
        run._tags.update(checked_tags)
        self._capture(run, log_git, log_command, log_system, log_packages)
        run.flush()  # the run exists on disk from the start: others see it RUNNING
        register(run)
        if self.on_start is not None:
            self.on_start(run)
        if system_metrics.wanted(log_system_metrics):
            run.monitor = system_metrics.SystemMonitor(run, self.layout.root)
        return run

    def request_stop(self, ref: str, reason: str | None = None, *, by: str | None = None) -> Path:
        """Ask run ``ref`` (an ID, a unique ID prefix or name) to stop: an immutable
        request file beside its runs folder, which the run's process looks for every
        ``MLTRAIL_FLUSH_SECONDS``. Only a running run can be asked."""
        if reason is not None and not isinstance(reason, str):
            raise InvalidInputError(f"a stop reason is text, not {type(reason).__name__}")
        run_id = self.resolve_run(ref)
        status = self.get_run(run_id)["run"]["status"]
        if status != "RUNNING":
            raise WrongStateError(f"run {run_id} is {status}: only a running run can be asked to stop")
        request = StopRequest(ts=time.time(), id=new_id(), by=by or current_user(), run=run_id, reason=reason)
        return write_event_file(self.layout.stop_requests(self.run_file(run_id)), request.id, request)

    def resume_run(self, run_id: str) -> Run:
        """Continue a run (a training job restarted after a crash or preemption), as
        MLflow's ``start_run(run_id=...)`` does: it reads RUNNING again, each metric's
        steps go on from its last one, a param keeps its value, and it ends as the resumed
        run ends. The run's own file is appended to: still one writer at a time."""
        path = self.run_file(run_id)
        events, _ = read_events(path, self.layout.relative(path))
        started = next((e for e in events if e.get("type") == "run_started"), None)
        if started is None:
            raise StoreCorruptError(f"run {run_id} has no readable run_started event in {path}")
        state = _replayed(events)
        self.compact()
        info = self.get_run(run_id)["run"]
        run = Run(self, run_id, started["experiment"], info["run_name"], int(info["run_seq"]), path,
                  FLUSH_EVENTS.get())
        run._seq, run._steps, run._params, run._tags, run._histogram_steps = state
        run.started = float(started["ts"])
        run._emit(ev.RunResumed)
        run.flush()
        os.utime(path.parent)  # a folder whose files all ended is not re-listed unless it changes
        register(run)
        if self.on_start is not None:
            self.on_start(run)
        return run

    def run_file(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not run_id.isalnum():
            raise NotFoundError(f"no run {run_id!r} in {self.root}")
        found = list(self.layout.experiments.glob(f"*/runs/{run_id}.jsonl")) if self.layout.experiments.is_dir() else []
        if not found:
            raise NotFoundError(f"no run {run_id!r} in {self.root} (resume takes a run's full ID)")
        return found[0]

    def _reserve_name(self, experiment: str, exp_dir: str, started: ev.RunStarted) -> tuple[int, str]:
        """The run's number and name as they read now: known runs plus this one."""
        with self._lock:
            names = self._names.get(exp_dir)
            if names is None:
                names = self._names[exp_dir] = ExperimentNames(experiment)
            runs_dir = self.layout.experiments / exp_dir / "runs"
            if stat_signature(runs_dir) not in (None, names.folder_state):
                # runs other processes (or a git merge) added since we last looked
                found = []
                for file_name in os.listdir(runs_dir):
                    run_id = file_name.removesuffix(".jsonl")
                    if run_id not in names.runs and file_name.endswith(".jsonl"):
                        first = read_first_event(runs_dir / file_name)
                        if first is not None and first.get("type") == "run_started":
                            found.append((first["ts"], run_id, first.get("name"), is_imported(first.get("tags"))))
                names.add_many(found)
            return names.add(started.ts, started.run, started.name)

    def _capture(self, run: Run, log_git: bool, log_command: bool, log_system: bool,
                 log_packages: bool) -> None:
        snap = capture.find_repository() if log_git else None
        if snap is not None:
            limit = DIFF_MAX_BYTES.get()
            diff = snap.diff[:limit]
            run._emit(ev.GitInfo, commit=snap.commit, branch=snap.branch,
                      dirty=bool(snap.diff), remote=snap.remote,
                      repo_path=_relative_to(self.root, snap.root),
                      diff_sha256=self.blobs.put_bytes(diff) if diff else None,
                      diff_bytes=len(snap.diff), diff_truncated=len(snap.diff) > limit)
        fields: dict[str, Any] = {}
        if log_command:
            argv, script, cwd = capture.command_line()
            if snap is not None:  # portable: relative to the repository root
                script = script and _relative_to(Path(script).resolve(), snap.root) or script
                cwd = _relative_to(Path(cwd), snap.root) or cwd
            fields.update(command=argv, script=script, cwd=cwd)
        if log_system:
            fields.update(capture.system_info())
        if log_packages:
            packages = capture.installed_packages()
            fields.update(packages_sha256=self.blobs.put_bytes(orjson.dumps(dict(packages))),
                          package_count=len(packages))
        if fields:
            run._emit(ev.Environment, **fields)

    def artifact_path(self, run: str, name: str) -> Path:
        """The local file holding a run's artifact."""
        run_id = self.resolve_run(run)
        rows = self._table("artifacts").to_pandas()
        match = rows[(rows["run_id"] == run_id) & (rows["path"] == name)]
        if match.empty:
            raise NotFoundError(f"run {run_id} has no artifact {name!r}")
        sha256, in_git = match.iloc[0]["sha256"], bool(match.iloc[0]["in_git"])
        path = self.layout.blob_path(sha256, large=not in_git)
        if not path.exists():
            raise NotFoundError(f"artifact {name!r} of run {run_id} is not present here ({path})"
                                + ("" if in_git else ": large artifacts stay out of git; copy "
                                   "blobs-large/ from the machine that logged it"))
        return path

    # -- reading ---------------------------------------------------------------------

    @cached_property
    def _index(self) -> RunIndex:
        from ..query.search import RunIndex

        return RunIndex(self.layout.tables)

    def compact(self, rebuild: bool = False, progress: Progress | None = None) -> CompactionResult:
        """Fold new events into the Parquet tables; see :mod:`mltrail.compaction.compact`."""
        from ..compaction.compact import compact

        self._require_store()
        return compact(self.layout, rebuild=rebuild, progress=progress)

    def _require_store(self) -> None:
        if not self.layout.experiments.is_dir():
            raise NotFoundError(f"no mltrail store at {self.root} (it has no experiments/ folder)")

    def _fresh_manifest(self) -> Manifest:
        """Compact what is new (saying if lines were skipped), then the manifest."""
        result = self.compact()
        if result.bad_lines:
            first = result.bad_lines[0]
            warnings.warn(SkippedLinesWarning(
                f"{len(result.bad_lines)} event line(s) could not be read and were skipped, "
                f"first {first}; `mltrail compact --rebuild` lists them all"), stacklevel=3)
        from ..compaction.manifest import load_manifest

        return load_manifest(self.layout.tables)

    def _table(self, name: str) -> Any:
        from ..query.tables import read_table

        return read_table(self.layout.tables, name, self._fresh_manifest())

    def search_runs(self, experiment: str | Sequence[str] | None = None, filter: str | None = None,
                    order_by: Sequence[str] | str | None = None,
                    max_results: int | None = None, view: str = "active") -> pd.DataFrame:
        """Runs as a DataFrame: ``run_id, experiment, run_name, status, start_time,
        end_time, parent_run_id``, then ``params.*``, ``metrics.*`` (latest values) and
        ``tags.*``.

        ``filter`` is MLflow's filter language with OR, NOT, parentheses and numeric
        params: ``"metrics.f1 > 0.8 and (params.C = '1.0' or params.lr < 0.01)"``.
        ``order_by`` takes clauses like ``"metrics.f1 DESC"``; default newest first.
        ``view``: ``"active"`` (deleted runs hidden, the default), ``"deleted"`` or
        ``"all"`` (MLflow's run_view_type); the last two add a ``deleted`` column.
        """
        from ..query.search import search_runs

        manifest = self._fresh_manifest()
        frame, logged = self._index.frame(manifest), self._index.columns(manifest)
        _check_experiments(experiment, frame, self.root)
        return search_runs(frame, logged, experiment=experiment, filter=filter, order_by=order_by,
                           max_results=max_results, crash_after=self.crash_after, view=view,
                           datasets=lambda: self._index.datasets(manifest))

    def all_runs(self) -> pd.DataFrame:
        """The run table as it is indexed, deleted runs included (indexed by run ID)."""
        return self._index.frame(self._fresh_manifest())

    def _first_starts(self) -> dict[str, float | None]:
        """Each experiment that has runs (deleted ones too), with its first run's start."""
        import pandas as pd

        try:
            runs = self.all_runs()
        except NotFoundError:  # no run logged yet
            return {}
        if runs.empty:
            return {}
        first = runs.groupby("experiment")["start_time"].min()
        return {str(name): (None if pd.isna(ts) else ts.timestamp()) for name, ts in first.items()}

    def run_edits(self, run_id: str | None = None) -> pd.DataFrame:
        """The edits made to runs (all, or one run's), oldest first: ``run_id, edit_id,
        time, by, kind`` (tag, untag, delete, restore), ``key, value``."""
        import pandas as pd

        table = self._table("run_edits").to_pandas()
        if run_id is not None:
            table = table[table["run_id"] == run_id]
        table = table.sort_values(["ts", "edit_id"]).reset_index(drop=True)
        table.insert(2, "time", pd.to_datetime(table.pop("ts"), unit="s", utc=True))
        return table

    def metric_history(self, run_ids: Sequence[str] | None = None,
                       keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Every metric point of the given runs (all runs if None): a long DataFrame
        with ``run_id, key, step, value, timestamp, best, dataset_name, dataset_digest`` (the dataset a
        point was measured on, as MLflow 3 links one; None where none is named)."""
        from ..query.search import metric_history

        return metric_history(self.layout.tables, self._fresh_manifest(), run_ids, keys)

    def histograms(self, run_ids: Sequence[str] | None = None, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Every histogram (``run.log_histogram``) of the given runs and keys: ``run_id, key,
        step, timestamp, edges, counts, dropped``."""
        from ..query.search import histograms

        return histograms(self.layout.tables, self._fresh_manifest(), run_ids, keys)

    def grouped_history(self, groups: Mapping[str, str], keys: Sequence[str], *, x: XAxis = "step",
                        band: Band = "std", smoothing: float = 0.0, points: int = 500) -> pd.DataFrame:
        """Per metric and group of runs (``groups``: run ID -> its group's label), the mean
        of the runs' values at each x with a band around it: ``key, group, x, mean, low,
        high, runs``. See :mod:`mltrail.query.grouped`."""
        from ..query.grouped import check_options, grouped_history

        check_options(x, band, smoothing, points)  # (before the store is read: a typo costs nothing)
        return grouped_history(self.layout.tables, self._fresh_manifest(), groups, keys, x=x, band=band,
                               smoothing=smoothing, points=points)

    def experiments(self) -> pd.DataFrame:
        """One row per experiment: name, description, run count, first and last start."""
        return self._table("experiments").to_pandas()

    def resolve_run(self, ref: str, within: Collection[str] | None = None) -> str:
        """A run ID from an ID, a unique ID prefix, or a unique run name; only among the
        runs of the experiments ``within`` when given (what a server's user may read)."""
        runs = self._index.frame(self._fresh_manifest())
        if within is not None:
            runs = runs[runs["experiment"].isin(list(within))]
        if ref in runs.index:
            return ref
        by_prefix = runs.index[runs.index.str.startswith(ref.upper())] if len(ref) >= 4 else []
        by_name = runs.index[runs["run_name"] == ref]
        found = set(by_prefix) | set(by_name)
        if len(found) == 1:
            return found.pop()
        if not found:
            raise NotFoundError(f"no run {ref!r} in {self.root}")
        raise AmbiguousRunError(ref, list(found))

    def artifacts(self) -> pd.DataFrame:
        """Every run's artifacts: ``run_id, path, sha256, size, in_git, source, timestamp``."""
        return self._table("artifacts").to_pandas()

    def experiment_of(self, run_id: str) -> str:
        """The experiment of a run, by its ID."""
        runs = self._index.frame(self._fresh_manifest())
        if run_id not in runs.index:
            raise NotFoundError(f"no run {run_id!r} in {self.root}")
        return str(runs.loc[run_id, "experiment"])

    def get_run(self, ref: str) -> dict[str, Any]:
        """Everything about one run, deleted or not: its row, params (with groups),
        latest metrics, tags, artifacts, datasets and the edits made to it."""
        from ..compaction.manifest import load_manifest
        from ..query.cells import present
        from ..query.search import derive_status
        from ..query.tables import read_table

        run_id = self.resolve_run(ref)
        manifest = load_manifest(self.layout.tables)
        frame = self._index.frame(manifest)
        row = frame.loc[run_id]
        status = derive_status(frame.loc[[run_id]], self.crash_after).iloc[0]

        def rows(name: str) -> pd.DataFrame:
            table = read_table(self.layout.tables, name, manifest).to_pandas()
            return table[table["run_id"] == run_id].drop(columns="run_id").reset_index(drop=True)

        info = {k: present(row[k])
                for k in frame.columns if not k.startswith(("params.", "metrics.", "tags."))}
        info["status"] = status
        params = rows("params")
        return {
            "run": info,
            "params": params,
            "metrics": rows("latest_metrics"),
            "tags": {r["key"]: r["value"] for r in rows("tags").to_dict("records")},
            "artifacts": rows("artifacts"),
            "datasets": rows("datasets"),
            "edits": self.run_edits(run_id).drop(columns="run_id"),
        }



def _relative_to(path: Path, root: str) -> str | None:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None


def _replayed(events: list[dict[str, Any]]) -> tuple[int, dict[str, int], dict[str, str], dict[str, str],
                                                     dict[str, int]]:
    """What a resumed run must go on from: the file's last seq, each metric's last step,
    the params, the tags, and each histogram's last step."""
    last_seq = 0
    steps: dict[str, int] = {}
    histogram_steps: dict[str, int] = {}
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    for event in events:
        kind, seq = event.get("type"), int(event.get("seq") or 0)
        if kind == "metrics":
            for i, (k, step) in enumerate(zip(event["k"], event["steps"])):
                key = event["keys"][k]
                steps[key] = max(steps.get(key, step), step)
            seq += len(event["steps"]) - 1
        elif kind == "metric":
            steps[event["key"]] = max(steps.get(event["key"], event["step"]), event["step"])
        elif kind == "histogram":
            histogram_steps[event["key"]] = max(histogram_steps.get(event["key"], event["step"]), event["step"])
        elif kind == "params":
            params.update(event["params"])
        elif kind in ("run_started", "tags"):
            tags.update(event.get("tags") or {})
        elif kind == "tag_deleted" and (key := event.get("key")) is not None:
            tags.pop(key, None)
        last_seq = max(last_seq, seq)
    return last_seq, steps, params, tags, histogram_steps


def _check_experiments(experiment: str | Sequence[str] | None, frame: pd.DataFrame, root: Path) -> None:
    """An experiment asked for by name that has no run is a mistake worth naming."""
    wanted = [experiment] if isinstance(experiment, str) else list(experiment or [])
    known = set(frame["experiment"].unique()) if len(frame) else set()
    unknown = [name for name in wanted if name not in known]
    if unknown:
        listed = ", ".join(repr(n) for n in sorted(known)) or "none yet"
        raise NotFoundError(f"no experiment {unknown[0]!r} in {root}", f"(experiments: {listed})")
