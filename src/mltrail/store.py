"""The Store: one store root and the four parts that live in it.

    >>> store = mltrail.Store("mltrail_runs")               # doctest: +SKIP
    >>> with store.start_run(experiment="churn") as run:     # doctest: +SKIP
    ...     run.log_metric("f1", 0.8)
    >>> store.search_runs(filter="metrics.f1 > 0.5")         # doctest: +SKIP
    >>> store.ab.get("ranker-v2").results()                  # doctest: +SKIP
    >>> store.registry.get("churn", alias="production")      # doctest: +SKIP

The parts share one verb set, names first and ``by`` (who acts; default ``$MLTRAIL_USER``
or the login) always a keyword at the end: ``list()`` (a DataFrame, one row each),
``get(name)``, ``exists(name)``, ``create(...)`` (``store.ab.create(spec)``,
``store.registry.create(name)``; feature definitions are ``apply_entity`` and
``apply_view``, as in Feast, since applying again replaces). Every error they raise
derives from :class:`mltrail.MltrailError` (see :mod:`mltrail.errors`).

It sits above the parts and hands each only what it uses: tracking gets the layout and
the blobs; the A/B engine the layout; the registry the layout, the blobs and tracking
(to read the runs it registers); the feature store the layout and the blobs. No part
imports the Store. What needs two parts at once lives here: promoting the winner of an
A/B experiment in the registry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import STORE_DIR, is_url, resolve_store_root
from .contract import method_like
from .errors import InvalidInputError, WrongStateError
from .storage.blobs import BlobStore
from .storage.layout import Layout
from .tracking.run import Run
from .tracking.tracker import Tracker

# Only tracking is imported with the Store: a training script that logs a run loads
# neither pandas, pyarrow's datasets, the A/B statistics (statsmodels, scipy), DuckDB nor
# the remote client. Each other part is imported where it is first used.
if TYPE_CHECKING:
    import pandas as pd

    from .ab.experiment import AbRegistry
    from .access.control import AccessControl
    from .compaction.compact import CompactionResult
    from .compaction.reader import Progress
    from .features.store import FeatureStore
    from .migration.mlflow_import import ImportSummary
    from .query.grouped import Band, XAxis
    from .registry.models import ModelRegistry, ModelVersion
    from .tracking.curation import GcResult
    from .tracking.reports import Reports
    from .tracking.views import SavedViews


class Store:
    """A store root: runs, A/B experiments, registered models and features.

    The root is ``root`` if given, else ``$MLTRAIL_DIR``, else ``./mltrail_runs``.
    ``crash_after`` (seconds, default ``$MLTRAIL_CRASH_AFTER_SECONDS`` or 120): a
    RUNNING run with no event for that long reads as CRASHED.
    """

    def __new__(cls, root: str | os.PathLike[str] | None = None, **options: Any) -> Any:
        """``Store("http://host:5050", token=...)`` (or ``$MLTRAIL_DIR`` set to a URL) is a
        store behind ``mltrail server``: see :class:`mltrail.remote.store.RemoteStore`."""
        target = root if root is not None else STORE_DIR.get()
        if cls is Store and is_url(target):
            from .remote.store import RemoteStore

            return RemoteStore(str(target), **options)
        return super().__new__(cls)

    def __init__(self, root: str | os.PathLike[str] | None = None, *, crash_after: float | None = None,
                 token: str | None = None, spool: str | os.PathLike[str] | None = None,
                 acting_as: str | None = None) -> None:
        """``token``, ``spool`` and ``acting_as`` are a server's (``root`` a URL: see
        :class:`mltrail.remote.store.RemoteStore`); a folder takes none of them."""
        given = [name for name, value in (("token", token), ("spool", spool), ("acting_as", acting_as))
                 if value is not None]
        if given:
            raise InvalidInputError(f"{', '.join(given)}: for a store behind a server (an http(s):// URL), "
                                    f"not the folder {str(resolve_store_root(root))!r}")
        self.root: Path = resolve_store_root(root)
        self.layout = Layout(self.root)
        self.blobs = BlobStore(self.layout)
        self.tracking = Tracker(self.layout, self.blobs, crash_after)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- the parts -------------------------------------------------------------------

    @cached_property
    def ab(self) -> AbRegistry:
        """The store's A/B experiments."""
        from .ab.experiment import AbRegistry

        return AbRegistry(self.layout)

    @cached_property
    def registry(self) -> ModelRegistry:
        """The store's model registry."""
        from .registry.models import ModelRegistry

        return ModelRegistry(self.layout, self.blobs, self.tracking)

    @cached_property
    def features(self) -> FeatureStore:
        """The store's feature store."""
        from .features.store import FeatureStore

        return FeatureStore(self.layout, self.blobs)

    @cached_property
    def access(self) -> AccessControl:
        """Users, groups and grants, which a server of this folder enforces (a folder
        opened directly has no users: the file system's permissions rule it)."""
        from .access.control import AccessControl

        return AccessControl(self.layout)

    @cached_property
    def views(self) -> SavedViews:
        """The store's saved views: named looks at runs (see :mod:`mltrail.tracking.views`)."""
        from .tracking.views import SavedViews

        return SavedViews(self.layout)

    @cached_property
    def reports(self) -> Reports:
        """The store's reports: Markdown files with live blocks (see :mod:`mltrail.tracking.reports`)."""
        from .tracking.reports import Reports

        return Reports(self.layout)

    @property
    def crash_after(self) -> float:
        return self.tracking.crash_after

    # -- tracking (see Tracker for each call's full description) ----------------------

    @method_like(Tracker.start_run)
    def start_run(self, *args: Any, **options: Any) -> Run:
        """Start a run in ``experiment`` and return it, or resume run ``run_id`` (the
        options: :meth:`mltrail.tracking.tracker.Tracker.start_run`)."""
        return self.tracking.start_run(*args, **options)

    def request_stop(self, run: str, reason: str | None = None, *, by: str | None = None) -> str:
        """Ask a running run to stop (its process sees ``run.stop_requested`` within a
        second or two); returns the run's ID."""
        return self.tracking.request_stop(run, reason, by=by).parent.name  # stop/<run_id>/<request>.jsonl

    def search_runs(self, experiment: str | Sequence[str] | None = None, filter: str | None = None,
                    order_by: Sequence[str] | str | None = None,
                    max_results: int | None = None, view: str = "active") -> pd.DataFrame:
        """Runs as a DataFrame, filtered with MLflow's filter language (deleted runs only
        with ``view="deleted"`` or ``"all"``); see :meth:`mltrail.tracking.tracker.Tracker.search_runs`."""
        return self.tracking.search_runs(experiment, filter, order_by, max_results, view)

    def metric_history(self, run_ids: Sequence[str] | None = None,
                       keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Every metric point of the given runs: ``run_id, key, step, value, timestamp, best,
        dataset_name, dataset_digest``."""
        return self.tracking.metric_history(run_ids, keys)

    def histograms(self, run_ids: Sequence[str] | None = None, keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Every histogram the runs logged (``run.log_histogram``): ``run_id, key, step,
        timestamp, edges, counts, dropped``, a row a histogram (bin ``i`` counts the values
        in ``[edges[i], edges[i + 1])``)."""
        return self.tracking.histograms(run_ids, keys)

    def grouped_history(self, groups: Mapping[str, str], keys: Sequence[str], *, x: XAxis = "step",
                        band: Band = "std", smoothing: float = 0.0, points: int = 500) -> pd.DataFrame:
        """Many runs' curves as a few: per metric in ``keys`` and group of runs (``groups``:
        run ID -> its group's label, e.g. ``runs.set_index("run_id")["params.seed"]``), the
        mean of the runs' values at each x with a band: ``key, group, x, mean, low, high,
        runs``. ``x``: ``"step"`` or ``"time"`` (seconds since the run's first point of that
        metric); ``band``: ``"std"`` (mean +- the standard deviation), ``"minmax"`` or
        ``"ci"`` (a 95% confidence interval of the mean); ``smoothing``: each run's
        exponential moving average, in [0, 1), before the runs are aggregated; ``points``:
        at most this many x buckets a curve (each run's points in a bucket averaged)."""
        return self.tracking.grouped_history(groups, keys, x=x, band=band, smoothing=smoothing, points=points)

    def experiments(self) -> pd.DataFrame:
        """One row per tracking experiment: name, description, run count, first and last start."""
        return self.tracking.experiments()

    def get_run(self, ref: str) -> dict[str, Any]:
        """Everything about one run (ID, unique ID prefix or unique name)."""
        return self.tracking.get_run(ref)

    def resolve_run(self, ref: str) -> str:
        """A run ID from an ID, a unique ID prefix, or a unique run name."""
        return self.tracking.resolve_run(ref)

    # -- curation (edit files: see mltrail.tracking.curation) ---------------------------

    def set_run_name(self, run: str, name: str, *, by: str | None = None) -> str:
        """Rename a run; returns its ID."""
        return self.tracking.curation.set_run_name(run, name, by=by)

    def set_run_notes(self, run: str, notes: str, *, by: str | None = None) -> str:
        """Set a run's notes (Markdown, shown as its description); ``""`` clears them."""
        return self.tracking.curation.set_run_notes(run, notes, by=by)

    def set_tag(self, run: str, key: str, value: Any, *, by: str | None = None) -> str:
        """Set a tag of a run after (or while) it runs."""
        return self.tracking.curation.set_tag(run, key, value, by=by)

    def delete_tag(self, run: str, key: str, *, by: str | None = None) -> str:
        """Remove a tag of a run."""
        return self.tracking.curation.delete_tag(run, key, by=by)

    def delete_run(self, run: str, *, by: str | None = None) -> str:
        """Hide an ended run from searches and the dashboard; :meth:`restore_run` undoes
        it, :meth:`gc` purges it."""
        return self.tracking.curation.delete_run(run, by=by)

    def restore_run(self, run: str, *, by: str | None = None) -> str:
        """Bring a deleted run back."""
        return self.tracking.curation.restore_run(run, by=by)

    def run_edits(self, run: str | None = None) -> pd.DataFrame:
        """Who renamed, tagged, deleted or restored which run, when (oldest first)."""
        return self.tracking.run_edits(None if run is None else self.resolve_run(run))

    def gc(self, runs: Sequence[str] | None = None, *, dry_run: bool = False) -> GcResult:
        """Purge deleted runs (all, or those named) and the blobs only they used."""
        return self.tracking.curation.gc(runs, dry_run=dry_run)

    def import_mlflow(self, source: str | os.PathLike[str], experiments: Sequence[str] | None = None, *,
                      include_deleted: bool = False, progress: Progress | None = None) -> ImportSummary:
        """Bring an MLflow tracking store here: an ``mlruns`` folder (read from its files) or,
        with ``mlflow`` installed, any tracking URI its client opens (``sqlite:///mlflow.db``,
        ``http://host:5000``). Experiments (all, or those named), their runs with every metric
        point, params, tags, artifacts and dataset inputs, and the registered models, their
        versions and aliases. Importing again adds only what is new. Deleted runs and
        experiments stay behind unless ``include_deleted``. See
        :mod:`mltrail.migration.mlflow_import`."""
        from .migration.mlflow_import import MlflowImport
        from .migration.mlflow_source import open_source

        if isinstance(experiments, str):
            experiments = [experiments]
        with open_source(source, self.tracking.layout.cache / "staging") as opened:  # nothing written to it
            return MlflowImport(self.tracking, self.registry, opened, experiments, include_deleted, progress).run()

    def artifact_path(self, run: str, name: str) -> Path:
        """The local file holding a run's artifact."""
        return self.tracking.artifact_path(run, name)

    def reproduce_script(self, run: str) -> str:
        """A bash script that reruns a run in a new git worktree at its commit, with its
        uncommitted diff applied, logging into this store (see :mod:`mltrail.tracking.reproduce`)."""
        from .tracking.reproduce import script_for

        return script_for(self.tracking, run)

    def compact(self, rebuild: bool = False, progress: Progress | None = None) -> CompactionResult:
        """Fold new run events into the Parquet tables; see :mod:`mltrail.compaction.compact`."""
        return self.tracking.compact(rebuild=rebuild, progress=progress)

    def refresh(self) -> int:
        """Compact what is new; the generation of the tables, which changes when they do
        (a reader's cache key: the dashboard's, a server's clients')."""
        from .compaction.manifest import load_manifest

        self.compact()
        return load_manifest(self.layout.tables).generation

    def close(self, wait: float | None = None) -> int:
        """What a store behind a server does at a job's end (send what is left); a folder
        has nothing to send: 0 runs left. Runs end themselves (``with`` or ``run.end()``)."""
        return 0

    # -- blobs -----------------------------------------------------------------------

    def put_file(self, source: Path) -> tuple[str, int, bool]:
        """Copy a file into the content-addressed blobs: ``(sha256, size, in_git)``."""
        return self.blobs.put_file(Path(source))

    def blob(self, sha256: str) -> bytes:
        """The content of a blob (an artifact, a diff, a package list)."""
        return self.blobs.read(sha256)

    # -- where the parts meet --------------------------------------------------------

    def load_model(self, uri: str) -> Any:
        """The model a ``models:/`` or ``runs:/`` URI names (hashes verified): the object
        pickled in its file, or an MLflow model's (``runs:/RUN/model``: its library's own
        model for scikit-learn, XGBoost and LightGBM; :mod:`mltrail.registry.mlflow_models`)."""
        return self.registry.load(uri)

    def promote_winner(self, experiment: str, alias: str = "production", force: bool = False,
                       by: str | None = None) -> ModelVersion:
        """Move ``alias`` to the registered version that won an A/B experiment.

        The experiment must be stopped with a winner whose variant serves a ``models:/``
        URI; an experiment whose traffic split failed its sample-ratio check is refused
        unless ``force``. The alias move records the experiment, the decision and the
        result, so the registry's history says why production changed.
        """
        from .query.cells import json_ready
        from .registry.uris import parse_model_uri

        exp = self.ab.get(experiment)
        if exp.state != "stopped":
            raise WrongStateError(f"experiment {experiment!r} is {exp.state}: stop it with a winner first")
        if not exp.winner:
            raise WrongStateError(f"experiment {experiment!r} stopped without a winner: nothing to promote")
        variant = next(v for v in exp.spec.variants if v.name == exp.winner)
        if not variant.model or not variant.model.startswith("models:/"):
            raise InvalidInputError(f"the winner {exp.winner!r} of {experiment!r} serves "
                                    f"{variant.model or variant.url!r}, not a registered model "
                                    "(models:/name@alias or models:/name/N)")
        results = exp.results()
        if results.srm_alarm and not force:
            raise WrongStateError(f"experiment {experiment!r} had a sample-ratio mismatch "
                                  f"(p = {results.srm_p_value:.2g}): its result is not trustworthy; "
                                  "pass force=True to promote anyway")
        name, number, source_alias = parse_model_uri(variant.model)
        winner = self.registry.get(name, number, source_alias)
        primary = results.table[(results.table["metric"] == exp.spec.primary.name)
                                & (results.table["variant"] == exp.winner)]
        row = primary.iloc[0].to_dict() if len(primary) else {}
        promotion = {"experiment": experiment, "winner": exp.winner, "served": variant.model,
                     "decision": exp.decision, "recommendation": results.recommendation,
                     "metric": exp.spec.primary.name, "lift": json_ready(row.get("relative")),
                     "lift_low": json_ready(row.get("relative_ci_low")),
                     "lift_high": json_ready(row.get("relative_ci_high")),
                     "p_value": json_ready(row.get("p_value")), "srm_p_value": json_ready(results.srm_p_value),
                     "units": {k: int(v) for k, v in results.units.items()},
                     "forced": bool(force and results.srm_alarm)}
        return self.registry.set_alias(name, alias, winner.number, by=by, promotion=promotion,
                                       reason=f"won A/B experiment {experiment}: {results.recommendation}")


if TYPE_CHECKING:  # the type checker proves that both kinds of store keep the one contract
    from .contract import StoreApi
    from .remote.store import RemoteStore

    def _keeps_the_contract(local: Store, remote: RemoteStore) -> tuple[StoreApi, StoreApi]:
        return local, remote
