import time

import pytest

from mltrail.storage.ids import id_time, new_id


@pytest.mark.slow
def test_ids_are_unique_and_sort_by_creation():
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 for i in ids)


def test_id_encodes_its_creation_time():
    before = time.time()
    identifier = new_id()
    assert abs(id_time(identifier) - before) < 1.0


def test_an_id_made_from_a_time_and_a_seed_is_the_same_each_time_and_sorts_by_the_time():
    import pytest

    from mltrail.storage.ids import id_at, id_time

    first = id_at(1_700_000_000_123, "mlflow-run:abc")
    assert first == id_at(1_700_000_000_123, "mlflow-run:abc") and len(first) == 26
    assert first != id_at(1_700_000_000_123, "mlflow-run:abd")
    assert id_at(1_700_000_000_124, "mlflow-run:000") > first  # a later time sorts after, whatever the seed
    assert id_time(first) == 1_700_000_000.123
    with pytest.raises(ValueError, match="48 bits"):
        id_at(-1, "x")
