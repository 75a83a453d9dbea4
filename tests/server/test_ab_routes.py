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
