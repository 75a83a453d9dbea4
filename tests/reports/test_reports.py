"""Reports (issue 30): Markdown under reports/ whose ```mltrail blocks are drawn from the
store. A block shows what the API answers (the same numbers), a reader on a server sees
only the runs they may read, a wrong block is a problem named by its line while the rest
is drawn, and the HTML export opens in chromium with no request."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import main
from mltrail.reports.blocks import Block, Prose, parse
from mltrail.reports.html import to_html
from mltrail.reports.render import Charts, Problem, Table, Value, render
from mltrail.tracking.reports import front_matter, with_author
from tests.factories import REPO, ab_spec, quiet_run, raced, served_with_users, simulate


@pytest.fixture
def store(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    rng = np.random.default_rng(5)
    for i in range(12):
        with quiet_run(store, "sweep", name=f"run-{i}", log_system=False) as run:
            run.log_params({"lr": [0.1, 0.01, 0.001][i % 3], "seed": i})
            for step in range(6):
                run.log_metric("loss", float(np.exp(-step * (i % 3 + 1) / 4) + rng.normal(0, 0.02)), step=step)
            run.log_metric("acc", float(0.7 + 0.02 * (i % 3) + rng.normal(0, 0.01)))
    with quiet_run(store, "other", name="elsewhere", log_system=False) as run:
        run.log_metric("acc", 0.5)
    return store


def _report(*blocks: str, prose: str = "# Title\n\nSome words.\n") -> str:
    return prose + "".join(f"\n```mltrail {block}\n```\n" for block in blocks)


def test_blocks_are_found_as_a_code_host_finds_fences_and_named_by_line():
    text = ("---\ntitle: T\n---\n# Head\n\n```python\nprint(1)\n```\n\n```mltrail runs\nlimit: 3\n```\n"
            "\n~~~mltrail chart\nmetrics: [loss\n~~~\n\n```mltrail pie\n```\n\n    ```mltrail runs\n    indented code\n")
    pieces = parse(text)
    blocks = [p for p in pieces if isinstance(p, Block)]
    assert [(b.line, b.kind) for b in blocks] == [(10, "runs"), (14, "chart"), (18, "pie")]
    assert blocks[0].spec.limit == 3 and blocks[0].problem is None
    assert "line 14 (chart): its YAML does not parse" in blocks[1].problem
    assert "not a block kind" in blocks[2].problem
    prose = "".join(p.text for p in pieces if isinstance(p, Prose))
    assert "print(1)" in prose and "indented code" in prose and "title: T" not in prose


@pytest.mark.parametrize("body,message", [
    ("limit: 0", "limit"), ("colour: red", "colour: Extra inputs"), ("- a\n- b", "YAML fields"),
    ("band: wide", "band"), ("experiment: [a, {b: c}]", "experiment"),
])
def test_a_wrong_block_names_its_line_and_field(body, message):
    [block] = [p for p in parse(f"text\n\n```mltrail chart\n{body}\n```\n") if isinstance(p, Block)]
    assert block.spec is None and "line 3" in block.problem and message in block.problem


def test_a_runs_block_shows_what_search_runs_answers(store):
    text = _report("runs\nexperiment: sweep\nfilter: params.lr != '0.1'\norder_by: metrics.acc DESC\n"
                   "columns: [params.lr, metrics.acc, metrics.missing]\nlimit: 5")
    [table] = [p for p in render(store, text) if isinstance(p, Table)]
    expected = store.search_runs("sweep", "params.lr != '0.1'", ["metrics.acc DESC"], max_results=5)
    assert list(table.frame["run"]) == list(expected["run_name"])
    assert list(table.frame["acc"]) == list(expected["metrics.acc"])
    assert list(table.frame["lr"]) == list(expected["params.lr"])
    assert "The first 5 runs in sweep where params.lr != '0.1'" in table.caption
    assert "no run found has metrics.missing" in table.caption


def test_value_blocks_equal_pandas_over_the_runs(store):
    runs = store.search_runs("sweep")
    text = _report("value\nexperiment: sweep\norder_by: metrics.acc DESC\ncolumn: metrics.acc",
                   "value\nexperiment: sweep\ncolumn: metrics.acc\nstat: mean",
                   "value\nfilter: metrics.acc > 0\nstat: count\ncolumn: metrics.acc")
    first, mean, count = [p for p in render(store, text) if isinstance(p, Value)]
    best = runs.sort_values("metrics.acc", ascending=False).iloc[0]
    assert first.text == f"{best['metrics.acc']:,.6g}" and best["run_name"] in first.caption
    assert mean.text == f"{runs['metrics.acc'].mean():,.6g}"
    assert count.text == "13"  # both experiments


def test_chart_blocks_draw_the_api_s_points_and_groups(store):
    text = _report("chart\nexperiment: sweep\nmetrics: loss\nlimit: 4\norder_by: attributes.run_name ASC",
                   "chart\nexperiment: sweep\nmetrics: [loss]\ngroup_by: params.lr\nband: minmax")
    lines, grouped = [p for p in render(store, text) if isinstance(p, Charts)]
    data = lines.charts[0].to_dict()
    points = pd.DataFrame(data["datasets"][data["data"]["name"]])
    runs = store.search_runs("sweep", order_by=["attributes.run_name ASC"]).head(4)
    history = store.metric_history(list(runs["run_id"]), ["loss"])
    assert set(points["run"]) == set(runs["run_name"])
    assert sorted(points["value"]) == sorted(history["value"])
    assert lines.caption.startswith("The first 4 of 12 runs")
    spec = grouped.charts[0].to_dict()
    rows = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    labels = {r: f"lr={v}" for r, v in zip(store.search_runs("sweep")["run_id"], store.search_runs("sweep")["params.lr"])}
    expected = store.grouped_history(labels, ["loss"], band="minmax", points=300)
    assert len(rows) == len(expected) == 3 * 6
    merged = rows.merge(expected, on=["group", "x"], suffixes=("", "_api"))
    assert np.allclose(merged["mean"], merged["mean_api"]) and np.allclose(merged["low"], merged["low_api"])
    assert "12 runs in 3 groups" in grouped.caption


def test_a_block_takes_its_saved_view_s_fields_and_overrides_them(store):
    store.views.save("fast", experiments=["sweep"], filter="params.lr = '0.1'", columns=["params.seed"],
                     charts=["loss"], group_by=["params.seed"])
    text = _report("runs\nview: fast", "runs\nview: fast\nfilter: params.lr = '0.01'", "chart\nview: fast")
    first, second, chart = [p for p in render(store, text) if isinstance(p, Table | Charts)]
    assert set(first.frame["run"]) == set(store.search_runs("sweep", "params.lr = '0.1'")["run_name"])
    assert list(first.frame.columns) == ["run", "seed"]
    assert set(second.frame["run"]) == set(store.search_runs("sweep", "params.lr = '0.01'")["run_name"])
    assert "4 runs in 4 groups" in chart.caption


def test_a_block_that_cannot_be_drawn_is_a_problem_in_its_place_and_the_rest_is_drawn(store):
    text = _report("runs\nfilter: metrics.acc >", "runs\nview: nowhere", "chart\nexperiment: sweep\ngroup_by: tags.x",
                   "ab\nexperiment: no-such-test", "runs\nexperiment: sweep\nlimit: 1")
    pieces = render(store, text)
    problems = [p.text for p in pieces if isinstance(p, Problem)]
    assert len(problems) == 4
    assert "line 5 (runs)" in problems[0] and "filter" in problems[0]  # (its fence: after 3 lines and a blank)
    assert "no saved view 'nowhere'" in problems[1]
    assert "tags.x" in problems[2] and "no-such-test" in problems[3]
    assert isinstance(pieces[-1], Table) and len(pieces[-1].frame) == 1


def test_an_ab_block_shows_the_experiment_s_results(tmp_path):
    store = mltrail.Store(tmp_path / "ab")
    exp = store.ab.create(ab_spec()).start()
    simulate(exp, {"control": 0.1, "treatment": 0.14}, 3000)
    [table] = [p for p in render(store, _report(f"ab\nexperiment: {exp.key}")) if isinstance(p, Table)]
    results = exp.results()
    assert table.frame["mean"].tolist() == results.table["mean"].tolist()
    assert results.recommendation in table.caption


def test_report_files_keep_their_author_title_and_text(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    saved = store.reports.save("weekly", "# Week 49\n\nAll good.\n", by="ana")
    assert (saved.title, saved.author) == ("Week 49", "ana")
    assert (store.root / "reports" / "weekly.md").read_text().startswith("---\nauthor: ana\n---\n\n# Week 49")
    again = store.reports.save("weekly", "---\ntitle: Week 49, again\nauthor: bo\n---\nMore.\n", by="bo")
    assert (again.title, again.author) == ("Week 49, again", "ana")  # the first saver stays the author
    assert front_matter(again.text)[1] == "More.\n"
    assert store.reports.names() == ["weekly"] and list(store.reports.list()["author"]) == ["ana"]
    store.reports.delete("weekly")
    assert not store.reports.exists("weekly")
    with pytest.raises(mltrail.NotFoundError):
        store.reports.get("weekly")


def test_author_lines_are_set_without_touching_the_rest():
    assert with_author("---\ntitle: x\n---\nbody", "ana") == "---\nauthor: ana\ntitle: x\n---\nbody"
    assert with_author("---\nauthor: bo\n---\nbody", "ana: x") == "---\nauthor: 'ana: x'\n---\nbody"


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".md", "x" * 101])
def test_a_report_name_is_never_a_path(tmp_path, name):
    store = mltrail.Store(tmp_path / "s")
    with pytest.raises(mltrail.InvalidInputError, match="report name"):
        store.reports.save(name, "text")
    assert not store.reports.exists(name) and not (tmp_path / "x.md").exists()


def test_a_damaged_report_file_says_so_and_the_others_list(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    store.reports.save("good", "# Good\n")
    (store.root / "reports" / "bad.md").write_bytes(b"\xff\xfe not text")
    assert store.reports.names() == ["bad", "good"]
    assert list(store.reports.list()["name"]) == ["good"]
    with pytest.raises(mltrail.InvalidInputError, match="not UTF-8"):
        store.reports.get("bad")
    with pytest.raises(mltrail.InvalidInputError, match="at most 1,000,000"):
        store.reports.save("huge", "x" * 1_000_001)


def test_on_a_server_a_report_shows_each_reader_the_runs_they_may_read(tmp_path):
    with served_with_users(tmp_path) as (local, clients):
        ana, bo, root = clients["ana"], clients["bo"], clients["root"]
        for experiment in ("private", "shared"):
            with quiet_run(ana, experiment, name=f"{experiment}-run") as run:
                run.log_metric("loss", 0.5)
        assert ana.upload() == 0
        ana.access.grant("experiment", "shared", to="bo", level="read")
        text = _report("runs\nfilter: metrics.loss < 1\ncolumns: [metrics.loss]", "runs\nexperiment: private",
                       "value\nfilter: metrics.loss < 1\nstat: count\ncolumn: metrics.loss")
        ana.reports.save("team", text, by="someone")
        assert bo.reports.names() == ["team"] and bo.reports.get("team").author == "ana"
        mine = render(ana, ana.reports.get("team").text)
        theirs = render(bo, bo.reports.get("team").text)
        assert set(mine[1].frame["run"]) == {"private-run", "shared-run"}
        assert set(theirs[1].frame["run"]) == {"shared-run"}
        assert isinstance(theirs[2], Problem) and "private-run" not in str(theirs)
        assert [p.text for p in mine if isinstance(p, Value)] == ["2"]
        assert [p.text for p in theirs if isinstance(p, Value)] == ["1"]
        with pytest.raises(mltrail.PermissionDeniedError, match="only its author or an admin"):
            bo.reports.save("team", "# mine now\n")
        with pytest.raises(mltrail.PermissionDeniedError):
            bo.reports.delete("team")
        assert bo.reports.save("bo-notes", "# Bo\n").author == "bo"
        assert root.reports.save("team", text + "\nChecked.\n").author == "ana"
        assert local.reports.get("team").text.endswith("Checked.\n")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="apt-get install chromium")
def test_the_html_export_opens_in_chromium_offline_with_its_charts(store, tmp_path):
    from playwright.sync_api import sync_playwright

    store.reports.save("sweep", _report("runs\nexperiment: sweep\ncolumns: [params.lr, metrics.acc]\nlimit: 3",
                                         "chart\nexperiment: sweep\nmetrics: [loss, acc]\ngroup_by: params.lr",
                                         "runs\nfilter: metrics.acc >", prose="# Sweep <script>alert(1)</script>\n"))
    target = tmp_path / "out" / "sweep.html"
    target.parent.mkdir()
    done = CliRunner().invoke(main, ["--store", str(store.root), "report", "render", "sweep", "-o", str(target)])
    assert done.exit_code == 0, done.output
    assert "1 block(s) not drawn" in done.output and "warning: the block at line" in done.output
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            asked = []
            page.route("**/*", lambda route: (asked.append(route.request.url),
                                              route.continue_() if route.request.url.startswith("file:")
                                              else route.abort()))
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(target.as_uri())
            assert asked == [target.as_uri()] and errors == []
            assert page.locator("h1").inner_text() == "Sweep <script>alert(1)</script>"  # escaped, not run
            assert page.locator("svg").count() == 2  # loss and acc, drawn
            assert page.locator("svg").first.bounding_box()["width"] > 300
            first = store.search_runs("sweep", max_results=3)
            cells = page.locator("table").first.locator("tbody tr td:first-child").all_inner_texts()
            assert cells == list(first["run_name"])
            assert "no run" not in page.content() and page.locator(".problem").count() == 1
        finally:
            browser.close()


def test_blocks_that_select_nothing_say_so_and_the_export_still_draws(store):
    none = "filter: metrics.acc > 100"
    pieces = render(store, _report(f"runs\n{none}", f"chart\n{none}\nmetrics: [loss]",
                                   f"chart\n{none}\nmetrics: [loss]\ngroup_by: params.lr",
                                   f"value\n{none}\ncolumn: metrics.acc\nstat: mean", f"value\n{none}\ncolumn: metrics.acc\nstat: count",
                                   "chart\nexperiment: sweep\nmetrics: [never-logged]\ngroup_by: params.lr",
                                   "chart\nexperiment: sweep\nmetrics: [never-logged]"))
    drawn = [p for p in pieces if not isinstance(p, Prose)]
    assert not [p for p in drawn if isinstance(p, Problem)], drawn
    table, chart, grouped, mean, count, no_metric_grouped, no_metric = drawn
    assert isinstance(table, Table) and table.frame.empty and table.caption.startswith("0 runs")
    assert isinstance(chart, Charts) and chart.charts == [] and "nothing to draw" in chart.caption
    assert isinstance(grouped, Charts) and grouped.charts == [] and "nothing to draw" in grouped.caption
    assert isinstance(mean, Value) and mean.text == "–" and "none has metrics.acc" in mean.caption
    assert isinstance(count, Value) and count.text == "0"
    for empty in (no_metric_grouped, no_metric):  # runs, but not that metric: an empty chart, not an error
        assert isinstance(empty, Charts) and len(empty.charts) == 1
    page = to_html(pieces, "Nothing")
    assert page.count("<svg") == 2 and "0 runs" in page


def test_the_report_command_saves_lists_shows_and_deletes(store, tmp_path):
    def cli(*args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, ["--store", str(store.root), "report", *args], input=stdin)

    text = "---\ntitle: Weekly\n---\n# Weekly\n\nAll well.\n"
    saved = cli("save", "weekly", stdin=text)
    assert saved.exit_code == 0 and "saved report weekly (Weekly)" in saved.output
    source = tmp_path / "notes.md"
    source.write_text("# Notes\n", encoding="utf-8")
    assert cli("save", "notes", str(source)).exit_code == 0
    listed = cli("list", "--json")
    assert listed.exit_code == 0
    rows = {row["name"]: row for row in json.loads(listed.output)}
    assert set(rows) == {"weekly", "notes"} and rows["weekly"]["title"] == "Weekly"
    table = cli()  # alone: the list, as a table
    assert table.exit_code == 0 and "weekly" in table.output and "Notes" in table.output
    shown = cli("show", "weekly")
    assert shown.exit_code == 0 and shown.output == store.reports.get("weekly").text
    assert shown.output.endswith("# Weekly\n\nAll well.\n")
    missing = cli("show", "nope")
    assert missing.exit_code != 0 and "nope" in missing.output
    bad = cli("save", "broken", stdin="---\ntitle: [unclosed\n---\n# x\n")
    assert bad.exit_code != 0 and "front matter" in bad.output and not store.reports.exists("broken")
    deleted = cli("delete", "notes")
    assert deleted.exit_code == 0 and "deleted report notes" in deleted.output
    assert store.reports.names() == ["weekly"]
    assert cli("delete", "notes").exit_code != 0  # gone


def test_the_sample_report_draws_every_block(tmp_path):
    shutil.copytree(REPO / "sample_runs", tmp_path / "s", ignore=shutil.ignore_patterns("*.py", ".cache"))
    store = mltrail.Store(tmp_path / "s")
    pieces = render(store, store.reports.get("churn-review").text)
    assert not [p for p in pieces if isinstance(p, Problem)]
    assert [type(p).__name__ for p in pieces if not isinstance(p, Prose)] == ["Table", "Value", "Charts", "Table",
                                                                            "Table"]
    assert json.dumps(to_html(pieces, "x")).count("<svg") == 2


# -- what an adversarial pass found (each once a 500, a stall, a forgery or a leak) --------

@pytest.mark.parametrize("front", [
    "date: 2024-02-30",  # PyYAML's date constructor raises ValueError
    "title: 2024-01-01 25:61:61",
    "x: " + "[" * 3000 + "]" * 3000,  # past PyYAML's recursion
    "- a list, not a mapping",
    "x: 1\n" * 3000,  # past 10,000 characters
])
def test_front_matter_that_does_not_build_is_refused_on_save_and_read_around(tmp_path, front):
    store = mltrail.Store(tmp_path / "s")
    with pytest.raises(mltrail.InvalidInputError, match="front matter"):
        store.reports.save("r", f"---\n{front}\n---\nhello\n", by="ana")
    assert not store.reports.exists("r")
    (store.root / "reports").mkdir(parents=True, exist_ok=True)
    (store.root / "reports" / "r.md").write_text(f"---\n{front}\n---\n# Hello\n")  # a git pull brought it
    assert store.reports.get("r").author is None and store.reports.get("r").title == "Hello"
    assert list(store.reports.list()["name"]) == ["r"]


@pytest.mark.parametrize("text", [
    "---\nauthor: x\nauthor: ana\n---\nx",  # YAML keeps the last of two keys
    '---\n"author": ana\n---\nx',
    "---\nauthor : ana\n---\nx",
    "---\n? author\n: ana\n---\nx",
    "---\n{author: ana}\n---\nx",
])
def test_a_report_s_author_cannot_be_forged_in_its_front_matter(tmp_path, text):
    store = mltrail.Store(tmp_path / "s")
    with pytest.raises(mltrail.InvalidInputError, match="front matter"):  # (names its author another way, or is no mapping)
        store.reports.save("forged", text, by="eve")
    assert not store.reports.exists("forged")


def test_an_author_that_is_no_text_is_no_author(tmp_path):
    store = mltrail.Store(tmp_path / "s")
    (store.root / "reports").mkdir(parents=True)
    bomb = "---\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "author: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\ntitle: *b\n---\n# Kept\n"
    (store.root / "reports" / "bomb.md").write_text(bomb)
    report = store.reports.get("bomb")
    assert (report.author, report.title) == (None, "Kept")


def test_a_title_heading_followed_by_much_space_is_read_at_once():
    from mltrail.tracking.reports import title_of

    assert title_of("r", "# a" + " " * 100_000 + "x\n") == ("a" + " " * 100_000)[:500]  # (backtracked for minutes)
    assert title_of("r", "# Week 49 ##\n") == "Week 49" and title_of("r", "#\n# Real\n") == "Real"


def test_on_a_server_the_author_rule_holds_under_races_and_for_files_that_are_not_text(tmp_path):
    with served_with_users(tmp_path, ("ana", "eve", "root")) as (local, clients):
        for number in range(8):
            name = f"race{number}"
            outcomes = raced(lambda user, name=name: clients[user].reports.save(name, f"# {user}\n"))
            report = local.reports.get(name)
            assert sorted(outcomes.values()) == ["refused", "saved"], outcomes  # never both
            winner = next(user for user, outcome in outcomes.items() if outcome == "saved")
            assert report.author == winner and report.text.endswith(f"# {winner}\n")
        (local.root / "reports" / "bytes.md").write_bytes(b"\xff\xfe not text")
        with pytest.raises(mltrail.PermissionDeniedError):
            clients["eve"].reports.save("bytes", "# mine\n")
        assert clients["root"].reports.save("bytes", "# fixed\n").author == "root"
        clients["root"].reports.delete("bytes")
        for bad in (".", "", "../x"):
            with pytest.raises(mltrail.NotFoundError):
                clients["eve"].reports.get(bad)
