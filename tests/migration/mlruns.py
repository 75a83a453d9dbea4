"""Writing MLflow ``mlruns`` folders by hand, file by file, as MLflow's FileStore lays them
out: the importer's tests need the unhappy ones (a missing meta.yaml, a malformed metric
line, a moved folder) that MLflow itself never writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STATUS = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def write_values(folder: Path, values: dict[str, str]) -> None:
    for key, value in values.items():
        path = folder / key  # a nested key ("model/depth") is a folder, as in MLflow
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value, encoding="utf-8")


@dataclass
class MlrunsBuilder:
    root: Path
    experiments: dict[str, Path] = field(default_factory=dict)

    def experiment(self, exp_id: str, name: str, tags: dict[str, str] | None = None, deleted: bool = False,
                   created_ms: int = 1_700_000_000_000) -> Path:
        folder = (self.root / ".trash" / exp_id) if deleted else self.root / exp_id
        write_yaml(folder / "meta.yaml", {
            "artifact_location": f"file://{folder}", "creation_time": created_ms, "experiment_id": exp_id,
            "last_update_time": created_ms, "lifecycle_stage": "deleted" if deleted else "active", "name": name})
        write_values(folder / "tags", tags or {})
        self.experiments[exp_id] = folder
        return folder

    def run(self, exp_id: str, run_id: str, *, name: str | None = None, status: str | int = "FINISHED",
            start_ms: int = 1_700_000_100_000, end_ms: int | None = 1_700_000_200_000,
            params: dict[str, str] | None = None, tags: dict[str, str] | None = None,
            metrics: dict[str, list[tuple[Any, ...]]] | None = None,
            artifacts: dict[str, bytes] | None = None, deleted: bool = False, user: str = "ana",
            artifact_uri: str | None = None) -> Path:
        folder = self.experiments[exp_id] / run_id
        write_yaml(folder / "meta.yaml", {
            "artifact_uri": artifact_uri or f"file://{folder}/artifacts", "end_time": end_ms, "entry_point_name": "",
            "experiment_id": exp_id, "lifecycle_stage": "deleted" if deleted else "active", "run_id": run_id,
            "run_name": name or "", "run_uuid": run_id, "source_name": "", "source_type": 4, "source_version": "",
            "start_time": start_ms, "status": STATUS[status] if isinstance(status, str) else status, "tags": [],
            "user_id": user})
        write_values(folder / "params", params or {})
        write_values(folder / "tags", {"mlflow.runName": name, **(tags or {})} if name else (tags or {}))
        (folder / "metrics").mkdir(exist_ok=True)
        for key, points in (metrics or {}).items():
            self.append_points(exp_id, run_id, key, points)
        for artifact, data in (artifacts or {}).items():
            path = folder / "artifacts" / artifact
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return folder

    def append_points(self, exp_id: str, run_id: str, key: str, points: list[tuple[Any, ...]]) -> None:
        """Points ``(ts, value, step)``, or as MLflow 3 writes a point measured on a dataset,
        ``(ts, value, step, dataset_name, dataset_digest)``."""
        path = self.experiments[exp_id] / run_id / "metrics" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(" ".join(str(field) for field in point) + "\n" for point in points)

    def dataset(self, exp_id: str, run_id: str, dataset_id: str, name: str, context: str | None,
                columns: list[str], rows: int, source: str) -> None:
        import json

        write_yaml(self.experiments[exp_id] / "datasets" / dataset_id / "meta.yaml", {
            "digest": dataset_id[:8], "name": name, "profile": json.dumps({"num_rows": rows}),
            "schema": json.dumps({"mlflow_colspec": [{"type": "long", "name": c} for c in columns]}),
            "source": json.dumps({"uri": source}), "source_type": "local"})
        write_yaml(self.experiments[exp_id] / run_id / "inputs" / f"input-{dataset_id}" / "meta.yaml", {
            "destination_id": run_id, "destination_type": "RUN", "source_id": dataset_id, "source_type": "DATASET",
            "tags": {"mlflow.data.context": context} if context else {}})

    def logged_model(self, exp_id: str, run_id: str | None, model_id: str, name: str, files: dict[str, bytes], *,
                     params: dict[str, str] | None = None, tags: dict[str, str] | None = None,
                     metrics: dict[str, list[str]] | None = None, status: int = 2, step: int | None = 0,
                     deleted: bool = False) -> Path:
        """An MLflow 3 logged model: its own folder beside the runs (status 2: READY), an
        output of its run at ``step`` (None: not linked). ``metrics`` are MLflow's lines,
        "timestamp value step run_id [dataset_name dataset_digest]"."""
        folder = self.experiments[exp_id] / "models" / model_id
        write_yaml(folder / "meta.yaml", {
            "artifact_location": f"file://{folder}/artifacts", "creation_timestamp": 1_700_000_250_000,
            "last_updated_timestamp": 1_700_000_260_000, "experiment_id": exp_id, "model_id": model_id,
            "name": name, "source_run_id": run_id, "status": status, "model_type": None,
            "lifecycle_stage": "deleted" if deleted else "active"})
        write_values(folder / "params", params or {})
        write_values(folder / "tags", tags or {})
        write_values(folder / "metrics", {key: "".join(f"{line}\n" for line in lines)
                                          for key, lines in (metrics or {}).items()})
        for path, data in files.items():
            (folder / "artifacts" / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / "artifacts" / path).write_bytes(data)
        if run_id is not None and step is not None:
            write_yaml(self.experiments[exp_id] / run_id / "outputs" / model_id / "meta.yaml", {
                "destination_id": model_id, "destination_type": "MODEL_OUTPUT", "source_id": model_id,
                "source_type": "RUN_OUTPUT", "step": step, "tags": {}})
        return folder

    def model(self, name: str, versions: list[dict[str, Any]], aliases: dict[str, int] | None = None,
              tags: dict[str, str] | None = None, description: str | None = None) -> Path:
        folder = self.root / "models" / name
        write_yaml(folder / "meta.yaml", {"name": name, "creation_timestamp": 1_700_000_300_000,
                                          "description": description, "last_updated_timestamp": 1_700_000_300_000})
        write_values(folder / "tags", tags or {})
        write_values(folder / "aliases", {a: str(v) for a, v in (aliases or {}).items()})
        for number, version in enumerate(versions, 1):  # a version {"deleted": True}: deleted in MLflow
            write_yaml(folder / f"version-{number}" / "meta.yaml", {
                "name": name, "version": number, "creation_timestamp": 1_700_000_300_000 + number,
                "current_stage": "Deleted_Internal" if version.get("deleted") else version.get("stage", "None"),
                "description": version.get("description"), "run_id": version.get("run_id"),
                "source": version.get("source"), "status": "READY", "user_id": None,
                "model_id": version.get("model_id")})
            write_values(folder / f"version-{number}" / "tags", version.get("tags", {}))
        return folder
