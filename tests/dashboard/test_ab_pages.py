"""The dashboard's A/B pages under AppTest: what they show, and their controls."""

import pytest
from streamlit.testing.v1 import AppTest

import mltrail
from tests.factories import APP, ab_spec, simulate


@pytest.fixture
def ab_store(dash_store):
    exp = dash_store.ab.create(ab_spec(mde=0.05)).start()  # needs ~700 units per arm
    simulate(exp, {"control": 0.10, "treatment": 0.16}, 3_000)
    exp.log.flush()
    return dash_store


def page(name):
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page(name).run()
    assert not at.exception, at.exception
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


@pytest.mark.slow
def test_experiments_page_lists_state_units_and_health(ab_store):
    at = page("ab_experiments.py")
    table = at.dataframe[0].value
    row = table.loc["ranker-v2"]
    assert row["state"] == "running" and row["units"] == 3_000 and row["health"] == "ok"
    assert row["progress"] >= 1


@pytest.mark.slow
def test_experiment_page_shows_results_and_recommendation(ab_store):
    at = page("ab_experiment.py")
    assert at.success[0].value.startswith("Ship treatment")  # true rates 10% and 16%
    assert not at.error  # no SRM banner
    results = at.dataframe[1].value
    assert results.loc["control", "lift"] == "—" and results.loc["treatment", "lift"].endswith("%")  # no "None"
    assert results.loc["treatment", "significant"] == "True" and results.loc["treatment", "units"] > 1_000
    assert not results.isna().any().any()
    assert len(at.get("vega_lite_chart")) == 2  # the interval and the exposures over time


@pytest.mark.slow
def test_controls_pause_resume_stop(ab_store):
    at = page("ab_experiment.py")
    button(at, "Pause").click().run()
    assert mltrail.Store(ab_store.root).ab.get("ranker-v2").state == "paused"
    button(at, "Resume").click().run()
    assert mltrail.Store(ab_store.root).ab.get("ranker-v2").state == "running"
    at.selectbox(key="ab_winner").set_value("treatment")
    at.text_input(key="ab_reason").input("treatment retains 6 points more")
    button(at, "Stop the experiment").click().run()
    exp = mltrail.Store(ab_store.root).ab.get("ranker-v2")
    assert (exp.state, exp.winner, exp.decision) == ("stopped", "treatment", "treatment retains 6 points more")
    assert "Stopped: **treatment**" in " ".join(m.value for m in at.markdown)


@pytest.mark.slow
def test_stop_without_reason_shows_the_error(ab_store):
    at = page("ab_experiment.py")
    button(at, "Stop the experiment").click().run()
    assert "needs a reason" in at.error[0].value
    assert mltrail.Store(ab_store.root).ab.get("ranker-v2").state == "running"


@pytest.mark.slow
def test_new_weights_start_a_new_phase(ab_store):
    at = page("ab_experiment.py")
    assert "new phase" in at.warning[0].value
    at.number_input(key="ab_w_control").set_value(0.3)
    at.number_input(key="ab_w_treatment").set_value(0.7)
    button(at, "Apply weights").click().run()
    exp = mltrail.Store(ab_store.root).ab.get("ranker-v2")
    assert exp.phase.number == 2 and exp.weights == {"control": 0.3, "treatment": 0.7}


@pytest.mark.slow
def test_power_calculator(dash_store):
    at = page("ab_power.py")
    values = {m.label: m.value for m in at.metric}
    assert values["Control"] == "14,745" and values["Duration"] == "6 days"
    at.slider(key="pc_split").set_value(0.1).run()
    values = {m.label: m.value for m in at.metric}
    assert (values["Control"], values["Treatment"]) == ("73,721", "8,192")
    assert len(at.get("vega_lite_chart")) == 1
    at.toggle(key="pc_relative").set_value(True).run()
    at.number_input(key="pc_mde").set_value(9.5).run()  # a 950% relative lift leaves (0, 1)
    assert "conversion rates must be in (0, 1)" in at.error[0].value


@pytest.mark.slow
def test_ab_pages_without_experiments(dash_store):
    assert "No A/B experiment yet" in page("ab_experiments.py").info[0].value
    assert "No A/B experiment yet" in page("ab_experiment.py").info[0].value


@pytest.mark.slow
def test_the_experiment_page_picks_a_phase_and_shows_coverage(ab_store):
    exp = ab_store.ab.get("ranker-v2").set_weights({"control": 0.3, "treatment": 0.7}, reason="ramp")
    exp = exp.set_coverage(0.5)
    simulate(exp, {"control": 0.10, "treatment": 0.10}, 400, seed=2)
    exp.log.flush()
    at = page("ab_experiment.py")
    header = next(m.value for m in at.markdown if m.value.startswith("### ranker\\-v2"))  # (escaped: text)
    assert "phase 2 of 2" in header and "coverage 50% of eligible units" in header
    phase2_units = at.dataframe[0].value["units"].sum()
    assert 0 < phase2_units < 400  # half of the 400 users are in
    assert at.dataframe[0].value.loc["treatment", "weight"] == 0.7
    at.selectbox(key="ab_phase").set_value(1).run()
    assert not at.exception, at.exception
    header = next(m.value for m in at.markdown if m.value.startswith("### ranker\\-v2"))
    assert "phase 1 of 2" in header and at.dataframe[0].value["units"].sum() == 3_000
    assert at.dataframe[0].value.loc["treatment", "weight"] == 0.5  # phase 1's own weights


@pytest.mark.slow
def test_the_experiment_page_breaks_results_down_by_an_attribute(dash_store):
    exp = dash_store.ab.create(ab_spec(mde=0.05)).start()
    for i in range(600):
        unit = f"user-{i}"
        exp.log_exposure(unit, exp.assign(unit), attributes={"platform": "ios" if i % 3 else "web"})
        if i % 4 == 0:
            exp.log_feedback(unit, "conversion", 1.0)
    exp.log.flush()
    at = page("ab_experiment.py")
    assert at.selectbox(key="ab_by").options == ["(no breakdown)", "platform"]
    at.selectbox(key="ab_by").set_value("platform").run()
    assert not at.exception
    breakdown = at.dataframe[-1].value
    assert set(breakdown["platform"]) == {"ios", "web"} and breakdown["units"].sum() == 600


@pytest.mark.slow
def test_an_experiment_without_attributes_offers_no_breakdown(ab_store):
    at = page("ab_experiment.py")
    assert not [s for s in at.selectbox if s.key == "ab_by"]
