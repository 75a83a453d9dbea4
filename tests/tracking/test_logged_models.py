"""Logged models as event files (no MLflow here): replayed the same by any reader,
strict writers, tolerant readers, and blobs that gc keeps while a model names them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import mltrail
from mltrail.errors import InvalidInputError, NotFoundError
from mltrail.tracking.logged_models import ModelMetricPoint


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_a_fresh_reader_replays_what_a_writer_wrote(store: mltrail.Store, tmp_path: Path) -> None:
    models = store.tracking.logged_models
    made = models.create("churn", "model", model_type="clf", source_run_id="R1", params={"lr": 0.1},
                         tags={"a": "1", "b": "2"})
    models.set_tags(made.model_id, {"a": "3"})
    models.delete_tag(made.model_id, "b")
    models.log_params(made.model_id, {"depth": 4})
    models.log_files(made.model_id, [("MLmodel", _file(tmp_path, "m", b"flavors: {}\n")),
                                     ("data/model.pkl", _file(tmp_path, "p", b"\x80" * 10))])
    models.log_metrics(made.model_id, [ModelMetricPoint("loss", math.inf, 2, 1_700_000_000.5)], run_id="R1")
    models.log_output(made.model_id, "R1", 2)
    models.finalize(made.model_id, "READY")

    again = mltrail.Store(store.root).tracking.logged_models.get(made.model_id)
    assert (again.experiment, again.name, again.model_type, again.source_run_id, again.status) == \
        ("churn", "model", "clf", "R1", "READY")
    assert again.params == {"lr": "0.1", "depth": "4"} and again.tags == {"a": "3"}
    assert {p: f.size for p, f in again.files.items()} == {"MLmodel": 12, "data/model.pkl": 10}
    assert [(m.key, m.value, m.step, m.run_id) for m in again.metrics] == [("loss", math.inf, 2, "R1")]
    assert again.outputs_of == {"R1": 2}
    assert mltrail.Store(store.root).tracking.logged_models.file_path(made.model_id, "MLmodel").read_bytes() == \
        b"flavors: {}\n"
    assert (store.root / "experiments" / "churn" / "models" / made.model_id).is_dir()


def test_model_ids_have_mlflows_form_and_sort_by_creation(store: mltrail.Store) -> None:
    ids = [store.tracking.logged_models.create("e", f"m{i}").model_id for i in range(5)]
    assert all(re.fullmatch(r"m-[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [r.name for r in store.tracking.logged_models.records(["e"])] == ["m0", "m1", "m2", "m3", "m4"]


def test_writers_refuse_what_readers_could_not_read(store: mltrail.Store, tmp_path: Path) -> None:
    models = store.tracking.logged_models
    made = models.create("e", "m")
    with pytest.raises(InvalidInputError, match=f"logged model {made.model_id}: tags"):
        models.set_tags(made.model_id, {"../up": "x"})
    with pytest.raises(InvalidInputError, match="status 'DONE'"):
        models.finalize(made.model_id, "DONE")
    with pytest.raises(InvalidInputError, match="name"):
        models.create("e", "two\nlines")
    with pytest.raises(InvalidInputError, match="'..'"):
        models.log_files(made.model_id, [("../../escape", _file(tmp_path, "f", b"x"))])
    with pytest.raises(NotFoundError, match="not found"):
        models.get("../../experiments")  # an ID is never a path
    with pytest.raises(NotFoundError, match="No tag with key 'nope'"):
        models.delete_tag(made.model_id, "nope")
    assert not any(p.is_file() for p in store.layout.blobs.rglob("*"))  # a refused path wrote no blob


def test_a_damaged_event_file_is_skipped_and_named(store: mltrail.Store) -> None:
    models = store.tracking.logged_models
    made = models.create("e", "m")
    models.set_tags(made.model_id, {"k": "v"})
    folder = store.root / "experiments" / "e" / "models" / made.model_id
    (folder / "01ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl").write_text('{"v":1,"type":"logged_model_tags_set"')  # torn
    with pytest.warns(mltrail.SkippedLinesWarning, match="01ZZZZZZZZZZZZZZZZZZZZZZZZ.jsonl: unreadable logged model"):
        assert mltrail.Store(store.root).tracking.logged_models.get(made.model_id).tags == {"k": "v"}


def test_deleted_models_are_hidden_unless_asked_for(store: mltrail.Store) -> None:
    models = store.tracking.logged_models
    kept, gone = models.create("e", "kept"), models.create("e", "gone")
    models.delete(gone.model_id)
    assert [r.name for r in models.records(["e"])] == ["kept"]
    assert [r.name for r in models.records(["e"], deleted=True)] == ["kept", "gone"]
    with pytest.raises(NotFoundError):
        models.set_tags(gone.model_id, {"k": "v"})
    assert models.get(gone.model_id, deleted=True).deleted and not models.get(kept.model_id).deleted


def test_gc_keeps_a_blob_that_a_model_still_names(store: mltrail.Store, tmp_path: Path) -> None:
    weights = _file(tmp_path, "weights.bin", b"shared weights")
    with store.start_run("e", log_git=False, log_system=False, log_packages=False, log_command=False) as run:
        run.log_artifact(weights)
    model = store.tracking.logged_models.create("e", "m")
    store.tracking.logged_models.log_files(model.model_id, [("weights.bin", weights)])
    store.delete_run(run.id)
    store.gc()
    assert store.tracking.logged_models.file_path(model.model_id, "weights.bin").read_bytes() == b"shared weights"
