"""One-event-per-file folders: whole writes, ordered tolerant reads."""

import pytest

from mltrail.errors import SkippedLinesWarning
from mltrail.storage import registry_events as ev
from mltrail.storage.eventfiles import EventFolder, write_event_file
from mltrail.storage.ids import new_id


def test_written_whole_read_in_order_and_a_bad_file_is_named(tmp_path):
    first, second = new_id(), new_id()
    write_event_file(tmp_path, second, ev.ModelCreated(ts=2.0, model="b", id=second))
    write_event_file(tmp_path, first, ev.ModelCreated(ts=1.0, model="a", id=first))
    (tmp_path / f"{new_id()}.jsonl").write_text('{"type": "model_created", "ts": "torn')
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file is left behind
    with pytest.warns(SkippedLinesWarning, match="unreadable registry event"):
        events = EventFolder(tmp_path, ev.REGISTRY_EVENT_ADAPTER, "registry").events()
    assert [e.model for e in events] == ["a", "b"]  # by ID, i.e. by time, not by write order


def test_an_event_folder_reads_each_file_once(tmp_path, monkeypatch):
    from mltrail.storage import eventfiles

    reads = []
    real = eventfiles._read_one
    monkeypatch.setattr(eventfiles, "_read_one", lambda path, *a: reads.append(path.name) or real(path, *a))
    folder = eventfiles.EventFolder(tmp_path / "events", ev.REGISTRY_EVENT_ADAPTER, "registry")
    assert folder.events() == []  # no folder yet
    first = new_id()
    write_event_file(tmp_path / "events", first, ev.ModelCreated(ts=1.0, model="a", id=first))
    assert [e.model for e in folder.events()] == ["a"]
    second = new_id()
    write_event_file(tmp_path / "events", second, ev.ModelCreated(ts=2.0, model="b", id=second))
    assert [e.model for e in folder.events()] == ["a", "b"]
    assert [e.model for e in folder.events()] == ["a", "b"]
    assert reads == [f"{first}.jsonl", f"{second}.jsonl"]  # each file read once, new ones picked up
