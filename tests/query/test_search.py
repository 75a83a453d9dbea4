

def test_metric_history_of_no_runs_and_no_keys_is_empty(store):
    from tests.factories import quiet_run

    with quiet_run(store, "e") as run:
        run.log_metric("loss", 1.0)
    assert store.metric_history([]).empty and store.metric_history(keys=[]).empty
    assert len(store.metric_history([run.id])) == 1
