"""PyTorch Lightning: ``mltrail.lightning.MltrailLogger``, a Lightning ``Logger``.

    trainer = lightning.Trainer(logger=MltrailLogger(experiment="mnist"), max_epochs=3)

It logs the module's hyperparameters (``save_hyperparameters()``; group ``hparams``),
every metric Lightning hands it (``self.log`` per step and per epoch, ``epoch``) at the
trainer's global step, and, after each checkpoint, the checkpoint files the callback
keeps (``checkpoints/<file>``) unless ``log_checkpoints=False``. Asked to
(``log_weights_every_n_steps=N``), it logs a histogram of each of the module's parameters
(``weights/<name>``) at each step Lightning logs metrics that is a multiple of N, drawn on the Run page as a heatmap over steps;
a module logs any other (gradients, activations) with ``self.logger.log_histogram(key,
tensor, step=self.global_step)``. It logs into ``run``
when given, else the active run, else a run of its own in ``store`` and ``experiment``
that ends with training (FAILED if training failed). Only the process of rank 0 logs.
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from ..errors import InvalidInputError
from ..store import Store
from ..tracking.run import Run
from .session import Settings, active_run, flat_params


class MltrailLogger(Logger):
    def __init__(self, store: Store | str | Path | None = None, experiment: str | None = None, *,
                 run: Run | None = None, name: str | None = None, log_checkpoints: bool = True,
                 log_weights_every_n_steps: int | None = None) -> None:
        super().__init__()
        self._settings = Settings(store=store, experiment=experiment)
        self._run = run
        self._owns_run = False
        self._run_name = name
        self._log_checkpoints = log_checkpoints
        self._logged_checkpoints: dict[str, float] = {}
        if log_weights_every_n_steps is not None and (type(log_weights_every_n_steps) is not int
                                                      or log_weights_every_n_steps < 1):
            raise InvalidInputError(f"log_weights_every_n_steps must be a whole number >= 1, "
                                    f"not {log_weights_every_n_steps!r}")
        self._weights_every = log_weights_every_n_steps
        self._module: Any = None  # the LightningModule, as the trainer hands it to log_graph
        self._weights_logged: set[int] = set()

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
        if self._weights_every and self._module is not None and step is not None \
                and step % self._weights_every == 0 and step not in self._weights_logged:
            self._weights_logged.add(step)  # (Lightning logs step and epoch metrics at one step)
            for name, parameter in self._module.named_parameters():
                self.experiment.log_histogram(f"weights/{name}", parameter, step=step)

    @rank_zero_only
    def log_histogram(self, key: str, values: Any, step: int | None = None, bins: int = 64) -> None:
        """A histogram of ``values`` (a tensor, an array) at ``step``: see
        :meth:`mltrail.Run.log_histogram`."""
        self.experiment.log_histogram(key, values, step=step, bins=bins)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """The trainer hands the module here as training starts: kept for its weights' histograms."""
        del input_array
        self._module = model

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
