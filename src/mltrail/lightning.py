"""``import mltrail.lightning``: ``MltrailLogger``, a PyTorch Lightning ``Logger``, described
in :mod:`mltrail.integrations.lightning`.

    from mltrail.lightning import MltrailLogger
    trainer = lightning.Trainer(logger=MltrailLogger(experiment="mnist"))

Unlike its siblings this module imports Lightning (and torch) as it loads, since the
logger subclasses Lightning's; without them it says which extra to install.
"""

try:
    from .integrations.lightning import MltrailLogger
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(f"mltrail.lightning needs Lightning ({exc.name} is missing): "
                              "pip install 'mltrail[lightning]'", name=exc.name) from None

__all__ = ["MltrailLogger"]
