import random

from mltrail.storage.naming import ExperimentNames, derive_run_names


def test_names_kept_up_to_date_equal_names_derived_from_scratch():
    """A writer's names (runs added one by one, and in bulk as another process's runs
    are found, in any order) are the names derived from all runs at once."""
    rng = random.Random(3)
    runs = [(float(rng.randrange(50)), f"r{i:03d}", rng.choice([None, None, "same", f"n{i}"]), rng.random() < 0.2)
            for i in range(200)]
    names = ExperimentNames("exp")
    for run in runs[:20]:
        names.add(*run)
    names.add_many(runs[20:150])  # listed in no order
    names.add_many(sorted(runs[150:190]))
    for run in runs[190:]:
        names.add(*run)
    names.add_many(runs[:5])  # already known: nothing changes
    assert names.names == derive_run_names("exp", runs)
    started = [names.names[run_id][1] for _, run_id, _, kept in runs if not kept]
    assert len(set(started)) == len(started)  # a run mltrail started has a name of its own
    assert any(names.names[run_id][1] == "same" for _, run_id, name, kept in runs if kept and name == "same")


def test_runs_found_after_every_known_run_are_numbered_in_order():
    names = ExperimentNames("exp")
    names.add(1.0, "a", None)
    names.add_many([(3.0, "c", None, False), (2.0, "b", "b", False)])
    assert names.names == {"a": (1, "exp_1"), "b": (2, "b"), "c": (3, "exp_3")}
    assert names.add(4.0, "d", None) == (4, "exp_4")


def test_an_imported_run_keeps_its_name_shared_or_not_and_a_started_run_takes_none_of_them():
    runs = [(1.0, "a", "fold-0", True), (2.0, "b", "fold-0", True), (3.0, "c", "fold-0", False),
            (4.0, "d", None, True), (5.0, "e", "fold-0", True)]
    expected = {"a": (1, "fold-0"), "b": (2, "fold-0"), "c": (3, "fold-0_2"), "d": (4, "exp_4"), "e": (5, "fold-0")}
    assert derive_run_names("exp", runs) == expected
    names = ExperimentNames("exp")
    for run in runs:
        names.add(*run)
    assert names.names == expected
    assert names.add(6.0, "f", "fold-0") == (6, "fold-0_3")
