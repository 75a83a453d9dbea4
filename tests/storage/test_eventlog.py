import multiprocessing
from pathlib import Path

import orjson
import pytest

from mltrail.errors import SchemaVersionError
from mltrail.storage.eventlog import EventWriter, events_to_lines, parse_line, read_events


def _append_many(path: str, lock: str, writer_id: int, count: int) -> None:
    writer = EventWriter(Path(path), Path(lock))
    for n in range(count):
        payload = {"v": 1, "type": "heartbeat", "ts": 1.0, "run": f"w{writer_id}", "seq": n,
                   "pad": "x" * (n % 50) * 100}
        writer.append(events_to_lines([payload, dict(payload, seq=-n)]))
    writer.close()


@pytest.mark.slow
def test_two_processes_appending_to_one_file_never_interleave(tmp_path):
    path, lock = tmp_path / "shared.jsonl", tmp_path / "shared.lock"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), str(lock), w, 300)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = path.read_bytes().split(b"\n")[:-1]
    assert len(lines) == 3 * 300 * 2
    events = [orjson.loads(line) for line in lines]  # every line whole
    for w in range(3):
        mine = [e["seq"] for e in events if e["run"] == f"w{w}"]
        assert mine[0::2] == list(range(300))  # each writer's batches stay in order
        assert mine[1::2] == [-n for n in range(300)]


def test_append_after_torn_line_keeps_new_events_intact(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"v":1,"type":"heartbeat","ts":1.0,"run":"r","seq":1}\n{"v":1,"ty')
    writer = EventWriter(path, tmp_path / "lock")
    writer.append(events_to_lines([{"v": 1, "type": "heartbeat", "ts": 2.0, "run": "r", "seq": 2}]))
    writer.close()
    events, bad = read_events(path)
    assert [e["seq"] for e in events] == [1, 2]
    assert len(bad) == 1 and bad[0].line == 2 and "JSON" in bad[0].reason


def test_reader_reports_torn_tail_without_raising(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"v":1,"type":"heartbeat","ts":1.0,"run":"r","seq":1}\n{"v":1,"type":"hea')
    events, bad = read_events(path)
    assert len(events) == 1
    assert bad[0].line == 2 and "incomplete last line" in bad[0].reason


def test_newer_schema_version_is_named_clearly():
    with pytest.raises(SchemaVersionError, match="newer mltrail.*v9"):
        parse_line(b'{"v":9,"type":"metric","ts":1.0,"run":"r","seq":1}')


def test_unknown_event_type_is_rejected():
    with pytest.raises(ValueError, match="unknown event type"):
        parse_line(b'{"v":1,"type":"bogus","ts":1.0,"run":"r","seq":1}')
