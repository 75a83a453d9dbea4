"""MLflow's own tests (mlflow/) are a peer suite run by scripts/peer_mlflow.py in their own
pytest session, with their own root and plugin: the default test run does not collect them."""

collect_ignore = ["mlflow"]
