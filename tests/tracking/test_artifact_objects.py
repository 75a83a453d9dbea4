"""Artifacts made from objects (issue 17): log_dict, log_text, log_table, log_image,
log_figure round-trip through the store; bad input is refused, naming what was wrong,
with nothing logged; the Run page previews them; ``mltrail artifacts list|get``."""

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from streamlit.testing.v1 import AppTest

import mltrail
from mltrail.cli import main
from mltrail.dashboard.text import md
from tests.factories import APP, quiet_run


@pytest.fixture
def logged(store):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    figure, axes = plt.subplots()
    axes.plot([0, 1, 2], [0.3, 0.2, 0.1])
    with quiet_run(store, "objects", name="made") as run:
        run.log_dict({"lr": 0.1, "layers": [64, 32], "ok": True}, "config.json")
        run.log_text("# notes\nthe loss went down\n", "notes.md")
        run.log_table(pd.DataFrame({"id": [1, 2, 3], "score": [0.5, 0.7, 0.9]}), "eval/predictions.parquet")
        run.log_image(np.linspace(0, 1, 12 * 16 * 3).reshape(12, 16, 3), "sample.png")
        run.log_image(Image.new("L", (8, 4), color=200), "grey.jpg")
        run.log_figure(figure, "loss.png")
        run.log_figure(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), "curve.plotly.json")
    plt.close(figure)
    return store, run


@pytest.mark.slow
def test_each_object_reads_back_as_what_it_was(logged):
    store, run = logged
    path = lambda name: store.artifact_path(run.id, name)  # noqa: E731
    assert orjson.loads(path("config.json").read_bytes()) == {"lr": 0.1, "layers": [64, 32], "ok": True}
    assert path("notes.md").read_text() == "# notes\nthe loss went down\n"
    assert pq.read_table(path("eval/predictions.parquet")).to_pandas()["score"].tolist() == [0.5, 0.7, 0.9]
    with Image.open(path("sample.png")) as image:
        assert image.size == (16, 12) and image.mode == "RGB"
    with Image.open(path("grey.jpg")) as image:
        assert image.format == "JPEG"
    assert path("loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert orjson.loads(path("curve.plotly.json").read_bytes())["data"][0]["type"] == "scatter"
    assert set(store.get_run(run.id)["artifacts"]["path"]) == {
        "config.json", "notes.md", "eval/predictions.parquet", "sample.png", "grey.jpg", "loss.png", "curve.plotly.json"}


@pytest.mark.slow
@pytest.mark.parametrize("call,words", [
    (lambda r: r.log_dict({"a": object()}, "x.json"), "log_dict('x.json')"),
    (lambda r: r.log_dict({"a": 1}, "x.yaml"), "name the artifact *.json"),
    (lambda r: r.log_dict("text", "x.json"), "needs a dict or a list"),
    (lambda r: r.log_text(b"bytes", "x.txt"), "needs a str"),
    (lambda r: r.log_table([1, 2], "x.parquet"), "needs a pandas DataFrame"),
    (lambda r: r.log_table(pd.DataFrame({"a": [1]}), "x.csv"), "*.parquet"),
    (lambda r: r.log_image(np.zeros((4, 4, 2)), "x.png"), "an array of shape"),
    (lambda r: r.log_image(np.full((4, 4), 2.0), "x.png"), "within 0 and 1"),
    (lambda r: r.log_image(np.zeros((4, 4)), "x.bmpx"), "image suffix"),
    (lambda r: r.log_image([[0, 1]], "x.png"), "needs a NumPy array or a PIL image"),
    (lambda r: r.log_figure("a chart", "x.png"), "takes a matplotlib or a Plotly figure"),
    (lambda r: r.log_text("x", "../escape.txt"), "artifact"),
])
def test_bad_objects_are_refused_and_nothing_is_logged(store, call, words):
    with quiet_run(store, "objects") as run:
        with pytest.raises(mltrail.InvalidInputError, match=None) as refused:
            call(run)
        assert words in str(refused.value)
    assert store.get_run(run.id)["artifacts"].empty


@pytest.mark.slow
def test_the_run_page_previews_them(logged, monkeypatch):
    store, run = logged
    monkeypatch.setenv("MLTRAIL_DIR", str(store.root))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["run"] = run.id
    at.run()
    at.switch_page("run.py").run()
    assert not at.exception, [e.value for e in at.exception]
    expanders = [e.label for e in at.expander]
    assert {f"Preview {md(n)}" for n in ("config.json", "notes.md", "eval/predictions.parquet", "sample.png",
                                     "grey.jpg", "loss.png", "curve.plotly.json")} <= set(expanders)
    assert len(at.get("image")) >= 3  # the three images
    assert any(j.value for j in at.json)  # the dict, as JSON
    assert any("the loss went down" in c.value for c in at.code)
    assert any(list(d.value.columns) == ["id", "score"] for d in at.dataframe)
    assert at.get("plotly_chart")


@pytest.mark.slow
def test_artifacts_from_the_command_line(logged, tmp_path, monkeypatch):
    store, run = logged
    monkeypatch.chdir(tmp_path)
    listed = CliRunner().invoke(main, ["artifacts", "list", "made", "--store", str(store.root)])
    assert listed.exit_code == 0 and "eval/predictions.parquet" in listed.output and "git" in listed.output
    got = CliRunner().invoke(main, ["artifacts", "get", "made", "notes.md", "--store", str(store.root)])
    assert got.exit_code == 0 and (tmp_path / "notes.md").read_text().startswith("# notes")
    again = CliRunner().invoke(main, ["artifacts", "get", "made", "notes.md", "--store", str(store.root)])
    assert again.exit_code == 1 and "--force replaces it" in again.output
    out = CliRunner().invoke(main, ["artifacts", "get", "made", "config.json", "-o", "-", "--store", str(store.root)])
    assert orjson.loads(out.output)["lr"] == 0.1
    missing = CliRunner().invoke(main, ["artifacts", "get", "made", "nope.bin", "--store", str(store.root)])
    assert missing.exit_code == 1 and "no artifact 'nope.bin'" in missing.output


def test_the_module_functions_log_objects_to_the_current_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRAIL_DIR", str(tmp_path / "fluent"))
    with mltrail.start_run("fluent", log_git=False, log_packages=False) as run:
        mltrail.log_dict({"a": 1}, "a.json")
        mltrail.log_text("hi", "hi.txt")
        mltrail.log_table(pd.DataFrame({"x": [1]}), "t.parquet")
        mltrail.log_image(np.zeros((2, 2), dtype=np.uint8), "z.png")
    store = mltrail.Store(tmp_path / "fluent")
    assert set(store.get_run(run.id)["artifacts"]["path"]) == {"a.json", "hi.txt", "t.parquet", "z.png"}
