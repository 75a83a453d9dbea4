"""MLflow's own clients on an mltrail store.

MLflow keeps its client code and lets a backend plug in at two seams; mltrail uses both
and both call one translation (:mod:`.translate`, mltrail's store in MLflow's entities):

- :mod:`.plugin`: MLflow's entry points (``mlflow.tracking_store``,
  ``mlflow.artifact_repository``; ``mlflow.model_registry_store``: :mod:`.registry`), so
  ``MLFLOW_TRACKING_URI=mltrail:./runs`` makes the real ``mlflow`` package read and write
  an mltrail folder, its model registry included;
- the MLflow REST API of ``mltrail server``, for MLflow clients in any language.

Everything here needs MLflow installed (``pip install 'mltrail[mlflow]'``); nothing else
in mltrail imports this package.
"""
