"""PyTorch Lightning: ``mltrail.lightning.MltrailLogger``, a Lightning ``Logger``.

    trainer = lightning.Trainer(logger=MltrailLogger(experiment="mnist"), max_epochs=3)

It logs the module's hyperparameters (``save_hyperparameters()``; group ``hparams``),
every metric Lightning hands it (``self.log`` per step and per epoch, ``epoch``) at the
trainer's global step, and, after each checkpoint, the checkpoint files the callback
keeps (``checkpoints/<file>``) unless ``log_checkpoints=False``. It logs into ``run``
when given, else the active run, else a run of its own in ``store`` and ``experiment``
that ends with training (FAILED if training failed). Only the process of rank 0 logs.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from ..store import Store
from ..tracking.run import Run
from .session import Settings, active_run, flat_params


class MltrailLogger(Logger):
    def __init__(self, store: Store | str | Path | None = None, experiment: str | None = None, *,
                 run: Run | None = None, name: str | None = None, log_checkpoints: bool = True) -> None:
        super().__init__()
        self._settings = Settings(store=store, experiment=experiment)
        self._run = run
        self._owns_run = False
        self._run_name = name
        self._log_checkpoints = log_checkpoints
        self._logged_checkpoints: dict[str, float] = {}

    @property
    def name(self) -> str:
        return self._settings.experiment or "Default"

    @property
    def version(self) -> str:
        return self.experiment.id

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The run this logger writes to, started on first use when none was given."""
        if self._run is None:
            self._run = active_run()
        if self._run is None:
            store = self._settings.target()
            self._run = store.start_run(self.name, name=self._run_name)
            self._owns_run = True
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        if values:
            self.experiment.log_params(flat_params(values), group="hparams")

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        values = {key: float(value) for key, value in metrics.items()}
        if values:
            self.experiment.log_metrics(values, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if not self._log_checkpoints:
            return
        kept = {getattr(checkpoint_callback, "best_model_path", ""), getattr(checkpoint_callback, "last_model_path", "")}
        kept |= set(getattr(checkpoint_callback, "best_k_models", {}) or {})
        for path in sorted(p for p in kept if p and Path(p).is_file()):
            changed = Path(path).stat().st_mtime
            if self._logged_checkpoints.get(path) != changed:
                self.experiment.log_artifact(path, name=f"checkpoints/{Path(path).name}")
                self._logged_checkpoints[path] = changed
        best = getattr(checkpoint_callback, "best_model_score", None)
        if best is not None:
            self.experiment.set_tag("best_checkpoint", f"checkpoints/{Path(checkpoint_callback.best_model_path).name}")

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Training ended: a run this logger started ends too ("success" is FINISHED)."""
        if self._owns_run and self._run is not None and self._run.status == "RUNNING":
            self._run.end("FINISHED" if status == "success" else "FAILED")
