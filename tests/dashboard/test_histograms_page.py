"""Histograms over steps on the Run page: a heatmap a key, its cells the bins the store
holds (each bin's share of its step's values), at most 100 steps evenly spread."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mltrail
from mltrail.dashboard.views import histogram_cells
from tests.dashboard.test_compare_truth import _rows
from tests.factories import quiet_run, rendered_page


def test_cells_are_the_bins_with_their_share_and_steps_are_thinned_evenly():
    frame = pd.DataFrame({"key": "w", "step": range(250), "edges": [np.array([0.0, 1.0, 2.0])] * 250,
                          "counts": [np.array([1, 3])] * 249 + [np.array([0, 2])]})
    cells, total = histogram_cells(frame, "w", steps=100)
    assert total == 250
    steps = sorted(cells["step"].unique())
    assert len(steps) == 100 and steps[0] == 0 and steps[-1] == 249
    first = cells[cells["step"] == 0]
    assert first[["low", "high", "count"]].values.tolist() == [[0.0, 1.0, 1], [1.0, 2.0, 3]]
    assert first["share"].tolist() == [0.25, 0.75]
    assert cells[cells["step"] == 249][["low", "count", "share"]].values.tolist() == [[1.0, 2, 1.0]]  # empty bin out
    assert histogram_cells(frame, "other")[0].empty


@pytest.mark.slow
def test_the_run_page_draws_a_heatmap_a_histogram_key(tmp_path, monkeypatch):
    store = mltrail.Store(tmp_path / "s")
    rng = np.random.default_rng(2)
    with quiet_run(store, "h", name="net") as run:
        for step in range(5):
            run.log_histogram("weights/fc1", rng.normal(step, 1.0, 400), bins=8)
            run.log_histogram("grads/fc1", rng.normal(0, 1.0 / (step + 1), 400), bins=8)
        run.log_metric("loss", 0.5)
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    app = rendered_page("run.py", run=run.id)
    assert not app.exception, [e.value for e in app.exception]
    assert any(s.value == "Histograms" for s in app.subheader)
    heatmaps = {json.loads(c.proto.spec)["title"]: c for c in app.get("vega_lite_chart")
                if json.loads(c.proto.spec).get("mark", {}).get("type") == "rect"}
    assert set(heatmaps) == {"grads/fc1", "weights/fc1"}
    drawn = pd.DataFrame(_rows(heatmaps["weights/fc1"]))
    expected, _ = histogram_cells(store.histograms([run.id]), "weights/fc1")
    assert len(drawn) == len(expected)
    assert sorted(drawn["count"]) == sorted(expected["count"]) and drawn["share"].sum() == pytest.approx(5.0)
