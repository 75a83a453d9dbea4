import time

from mltrail.storage.ids import id_time, new_id


def test_ids_are_unique_and_sort_by_creation():
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 for i in ids)


def test_id_encodes_its_creation_time():
    before = time.time()
    identifier = new_id()
    assert abs(id_time(identifier) - before) < 1.0
