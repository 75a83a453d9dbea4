"""The A/B routes of ``mltrail server`` (issue 26) keep what a local store keeps, whatever
a client sends: log lines within the writer's bounds, split on ``\\n`` as readers split
them, a resend appended exactly once or refused whole, and lifecycle changes made by the
domain's own methods. Requests are raw HTTP, as any client could send them; a refused
one writes nothing."""

import json
import urllib.error
import urllib.request

import pytest

import mltrail
from tests.factories import AB_LINES_OUT_OF_BOUNDS, AB_SPEC, ab_log_line, serving_store

KEY = AB_SPEC["key"]
SEGMENT = "01M8AAAAAAAAAAAAAAAAAAAAAA-0001.jsonl"
LOG = f"/api/v1/ab/{KEY}/log/{SEGMENT}"


@pytest.fixture
def served(tmp_path):
    """A running experiment in a server's folder: (URL, the folder's own Store)."""
    folder = tmp_path / "store"
    local = mltrail.Store(folder)
    local.ab.create(AB_SPEC).start()
    with serving_store(folder) as url:
        yield url, local


def send(url, method, path, body=b""):
    """(status, JSON answer) of one raw request."""
    request = urllib.request.Request(url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def held(local):
    path = local.ab.log_folder(KEY) / SEGMENT
    return path.read_bytes() if path.exists() else b""


# -- log lines ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("bad", AB_LINES_OUT_OF_BOUNDS.values(), ids=AB_LINES_OUT_OF_BOUNDS.keys())
def test_a_log_line_outside_the_writers_bounds_is_refused_and_nothing_is_written(served, bad):
    url, local = served
    status, answer = send(url, "POST", f"{LOG}?offset=0", ab_log_line() + bad)
    assert status == 422 and answer["error"].startswith("line 2: "), answer
    assert held(local) == b""
    assert sum(local.ab.get(KEY).results().units.values()) == 0  # nothing half-read either


def test_lines_split_by_a_lone_carriage_return_are_refused(served):
    """Readers split on \\n only: two lines joined by \\r are one unreadable line there."""
    url, local = served
    body = ab_log_line().rstrip(b"\n") + b"\r" + ab_log_line(seq="2", unit='"u2"')
    status, answer = send(url, "POST", f"{LOG}?offset=0", body)
    assert status == 422 and "line 1" in answer["error"] and "a lone \\r" in answer["error"], answer
    assert held(local) == b""
    good = ab_log_line() + ab_log_line(seq="2", unit='"u2"')
    assert send(url, "POST", f"{LOG}?offset=0", good) == (200, {"size": len(good)})
    assert sum(local.ab.get(KEY).results().units.values()) == 2


@pytest.mark.slow
def test_a_resend_whose_bytes_differ_is_refused_whole(served):
    """A resend is dropped by its offset only when it is the bytes the server holds. One
    that differs was cut at the server's size and the rest appended: here a half line,
    ``{"country":"fr"}}``."""
    url, local = served
    first = ab_log_line()
    assert send(url, "POST", f"{LOG}?offset=0", first) == (200, {"size": len(first)})
    other = ab_log_line(ts="1", unit='"u"', attributes='{"country":"fr"}')
    assert other[len(first):] == b'{"country":"fr"}}\n'  # what the server appended
    status, answer = send(url, "POST", f"{LOG}?offset=0", other)
    assert status == 409 and "differ from the ones held here" in answer["error"], answer
    assert held(local) == first
    # not from inside a line, even when the bytes from there match
    status, answer = send(url, "POST", f"{LOG}?offset=1", first[1:] + ab_log_line(seq="2"))
    assert status in (409, 422) and held(local) == first
    status, answer = send(url, "POST", f"{LOG}?offset=-1", first)
    assert status == 422 and held(local) == first
    # the same bytes again, and a resend that also carries new lines: appended exactly once
    assert send(url, "POST", f"{LOG}?offset=0", first) == (200, {"size": len(first)})
    more = first + ab_log_line(seq="2", unit='"u2"')
    assert send(url, "POST", f"{LOG}?offset=0", more) == (200, {"size": len(more)})
    assert held(local) == more
    assert sum(local.ab.get(KEY).results().units.values()) == 2


# -- lifecycle changes ---------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("change,words", [
    ({"type": "ab_phase", "fields": {"weights": {"contrl": 0.5, "treatment": 0.5}}},
     "weights must name exactly the variants ['control', 'treatment']"),
    ({"type": "ab_phase", "fields": {"weights": {"contrl": 0.5, "treatment": 0.5}, "seed": "s"}}, "cannot set seed"),
    ({"type": "ab_stopped", "fields": {"winner": "nope", "reason": "typo"}}, "unknown variant 'nope'"),
    ({"type": "ab_stopped", "fields": {"winner": "treatment"}}, "stopping needs a reason"),
    ({"type": "ab_stopped", "fields": {"winner": "treatment", "reason": 7}}, "fields.reason"),
    ({"type": "ab_coverage", "fields": {"coverage": 2}}, "coverage must be in (0, 1]"),
    ({"type": "ab_phase", "fields": {"weights": {"control": 0.9, "treatment": 0.1}, "seed": "mine"}},
     "cannot set seed"),
    ({"type": "ab_started", "fields": {"winner": "treatment"}}, "fields.winner"),
], ids=["weights naming contrl", "a seed chosen by the client, with contrl", "a winner that is no variant",
        "a stop without a reason", "a reason that is no text", "coverage 2", "a seed chosen by the client",
        "a start with a winner"])
def test_a_lifecycle_change_is_checked_by_the_domain_and_nothing_is_written(served, change, words):
    """The route once appended past the Experiment's methods: a reweight naming 'contrl'
    was written (answering 500), and get, assign, results and ab.list() raised KeyError
    for good; a winner that is no variant and a stop without a reason were taken."""
    url, local = served
    lifecycle = sorted((local.root / "ab" / KEY / "lifecycle").iterdir())
    status, answer = send(url, "POST", f"/api/v1/ab/{KEY}/lifecycle", json.dumps(change).encode())
    assert status == 422 and words in answer["error"], answer
    assert sorted((local.root / "ab" / KEY / "lifecycle").iterdir()) == lifecycle
    assert local.ab.get(KEY).state == "running" and len(local.ab.list()) == 1


def test_lifecycle_changes_through_the_server_are_the_experiments_own(served):
    url, local = served
    remote = mltrail.Store(url)
    exp = remote.ab.get(KEY).set_weights({"control": 0.2, "treatment": 0.8}, reason="ramp up", by="ana")
    phase = local.ab.get(KEY).phase
    assert exp.phase.number == phase.number == 2 and phase.weights == {"control": 0.2, "treatment": 0.8}
    assert phase.seed.startswith(f"{KEY}:") and phase.seed != local.ab.get(KEY).phases[0].seed  # the server's draw
    exp = exp.set_coverage(0.5).pause(reason="holiday").stop("treatment", "it converts better")
    stopped = local.ab.get(KEY)
    assert (stopped.state, stopped.winner, stopped.coverage, stopped.decision) == (
        "stopped", "treatment", 0.5, "it converts better")
    remote.close(wait=5)
