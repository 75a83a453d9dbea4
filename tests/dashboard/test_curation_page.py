"""The Run page curates a run: rename, notes, tags, delete and restore, through the
public API, and the Runs page hides what was deleted."""

import pytest

from tests.dashboard.test_pages import ids_by_name


def run_page(app, run_id):
    app.query_params["run"] = run_id
    app.switch_page("run.py").run()
    assert not app.exception
    return app


@pytest.mark.slow
def test_renaming_and_notes_from_the_run_page(app, dash_store):
    run_id = ids_by_name(dash_store)["rf-8"]
    run_page(app, run_id)
    app.text_input(key="curate_name").set_value("deep forest")
    app.text_area(key="curate_notes").set_value("## Verdict\nkeep **this** one")
    app.button[0].click().run()  # the first form's submit button
    assert not app.exception
    info = dash_store.get_run(run_id)
    assert info["run"]["run_name"] == "deep forest"
    assert info["run"]["description"] == "## Verdict\nkeep **this** one"
    assert any("Verdict" in m.value for m in app.markdown)  # notes shown as Markdown
    assert [s.value for s in app.success] == ["Saved."]
    history = app.dataframe[0].value
    assert history["change"].tolist() == ["renamed to 'deep forest'", "notes set"]


@pytest.mark.slow
def test_tags_are_set_and_removed_from_the_run_page(app, dash_store):
    run_id = ids_by_name(dash_store)["gb"]
    run_page(app, run_id)
    app.text_input(key="curate_tag_key").set_value("review")
    app.text_input(key="curate_tag_value").set_value("passed")
    next(b for b in app.button if b.label == "Set tag").click().run()
    assert dash_store.get_run(run_id)["tags"] == {"review": "passed"}
    app.selectbox(key="curate_untag_key").set_value("review")
    next(b for b in app.button if b.label == "Remove").click().run()
    assert dash_store.get_run(run_id)["tags"] == {}


@pytest.mark.slow
def test_a_bad_name_is_refused_on_the_page_and_nothing_is_written(app, dash_store):
    run_id = ids_by_name(dash_store)["gb"]
    run_page(app, run_id)
    app.text_input(key="curate_name").set_value("a\tb")
    app.button[0].click().run()
    assert "control characters" in app.error[0].value
    assert dash_store.get_run(run_id)["edits"].empty


@pytest.mark.slow
def test_delete_hides_the_run_and_restore_brings_it_back(app, dash_store):
    run_id = ids_by_name(dash_store)["rf-4"]
    run_page(app, run_id)
    app.button(key="curate_delete").click().run()
    assert dash_store.get_run(run_id)["run"]["deleted"]
    assert "Deleted" in app.warning[0].value
    assert app.selectbox(key="run_choice").value == run_id  # still shown, labelled
    app.switch_page("runs.py").run()
    assert "rf-4" not in set(app.dataframe[0].value["name"])
    app.toggle(key="show_deleted").set_value(True).run()
    assert app.dataframe[0].value["name"].tolist() == ["rf-4"]
    assert app.caption[0].value.startswith("1 deleted run ·")
    app.toggle(key="show_deleted").set_value(False).run()
    run_page(app, run_id)
    app.button(key="curate_restore").click().run()
    assert not dash_store.get_run(run_id)["run"]["deleted"]
    app.switch_page("runs.py").run()
    assert "rf-4" in set(app.dataframe[0].value["name"])


@pytest.mark.slow
def test_a_running_run_offers_no_delete(dash_store, app):
    from tests.factories import quiet_run
    run = quiet_run(dash_store, "churn", name="live")
    try:
        run.flush()
        run_page(app, run.id)
        assert not [b for b in app.button if b.key == "curate_delete"]
    finally:
        run.end()
