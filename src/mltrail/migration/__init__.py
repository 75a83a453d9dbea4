"""Bringing runs from other trackers into a store: MLflow's ``mlruns`` folders and servers
(:mod:`.mlflow_import`). It sits above tracking and the registry, whose files it writes."""
