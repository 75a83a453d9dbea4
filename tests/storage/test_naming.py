import random

from mltrail.storage.naming import ExperimentNames, derive_run_names


def test_names_kept_up_to_date_equal_names_derived_from_scratch():
    """A writer's names (runs added one by one, and in bulk as another process's runs
    are found, in any order) are the names derived from all runs at once."""
    rng = random.Random(3)
    runs = [(float(rng.randrange(50)), f"r{i:03d}", rng.choice([None, None, "same", f"n{i}"])) for i in range(200)]
    names = ExperimentNames("exp")
    for run in runs[:20]:
        names.add(*run)
    names.add_many(runs[20:150])  # listed in no order
    names.add_many(sorted(runs[150:190]))
    for run in runs[190:]:
        names.add(*run)
    names.add_many(runs[:5])  # already known: nothing changes
    assert names.names == derive_run_names("exp", runs)
    assert len({name for _, name in names.names.values()}) == len(runs)


def test_runs_found_after_every_known_run_are_numbered_in_order():
    names = ExperimentNames("exp")
    names.add(1.0, "a", None)
    names.add_many([(3.0, "c", None), (2.0, "b", "b")])
    assert names.names == {"a": (1, "exp_1"), "b": (2, "b"), "c": (3, "exp_3")}
    assert names.add(4.0, "d", None) == (4, "exp_4")
