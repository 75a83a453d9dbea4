"""The batch serialiser gives exactly one JSON line per event, for any content."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mltrail.storage.eventlog import events_to_lines

# any text a writer accepts: lone surrogates are refused at log time (tested below)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30) | st.sampled_from(
    ['},{"v":', '"},{"v":1', '\\"},{\\"v\\":', "}\n{", '{"v":1}'])

EVENT = st.fixed_dictionaries({
    "type": st.sampled_from(["metric", "params", "tags"]),
    "ts": st.floats(allow_nan=False, allow_infinity=False), "run": ANY_TEXT, "seq": st.integers(0, 10**9),
}, optional={
    "key": ANY_TEXT, "value": st.floats(allow_nan=False, allow_infinity=False) | st.none(),
    "params": st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3),
    "tags": st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3),
    "command": st.lists(ANY_TEXT, max_size=3),
}).map(lambda fields: {"v": 1, **fields})  # every event's first field is v, as written


@pytest.mark.slow
@given(st.lists(EVENT, min_size=1, max_size=20))
def test_one_line_per_event_whatever_the_strings(events):
    data = events_to_lines(events)
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    assert [orjson.loads(line) for line in lines] == events
    assert lines == [orjson.dumps(e) for e in events]


def test_lone_surrogates_are_refused_where_logged(store):
    import pytest

    import mltrail
    from tests.factories import quiet_run

    bad = "caf\udce9"  # what os.fsdecode makes of a Latin-1 file name
    with quiet_run(store) as run:
        run.flush()
        size = run.path.stat().st_size
        for call in (lambda: run.log_metric(bad, 1.0), lambda: run.log_param("p", bad),
                     lambda: run.set_tag("t", bad), lambda: run.log_params({bad: 1})):
            with pytest.raises(mltrail.InvalidInputError):
                call()
        run.flush()
        assert run.path.stat().st_size == size
    with pytest.raises(mltrail.InvalidInputError):
        store.start_run(bad, log_git=False)
