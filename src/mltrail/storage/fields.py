"""Field types that every event schema shares, with the bounds readers rely on.

A value outside them would be written and then break every reader: a sha256 that is a
path (``xx/../../etc/passwd``) names a file outside the store; an integer past int64 or
a time past year 3000 overflows the Parquet columns compaction writes. Writers refuse
them; readers skip a line holding one and report it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
MAX_NAME = 250  # characters of an experiment's or a run's name
MAX_DATASET_TEXT = 500  # characters of a metric point's dataset name or digest (MLflow's longest name)
LATEST_TS = 32_503_680_000.0  # 3000-01-01 UTC: later times are typos or unit mistakes (ms, ns)

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]  # lowercase hex, as hashlib writes it
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]  # sizes, row counts
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]  # metric steps, sequence numbers
Timestamp = Annotated[float, Field(ge=0.0, le=LATEST_TS, allow_inf_nan=False)]  # seconds since the epoch
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]  # NaN and ±inf are written by name, never as numbers


def _text_problem(text: object, limit: int, blank: bool) -> str | None:
    """What makes ``text`` unfit as a name shown and compared as it is (``blank``: whether
    whitespace alone counts as empty), or None."""
    if not isinstance(text, str) or not (text.strip() if blank else text):
        return "must be non-empty text"
    if len(text) > limit:
        return f"is {len(text)} characters long; the limit is {limit}"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "must not contain control characters (a newline, a tab...)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate)"
    return None


def name_problem(name: object) -> str | None:
    """What makes ``name`` unfit to name an experiment or a run, or None. A name is shown
    in lists and compared as it is: a trailing newline would make ``churn\\n`` a second
    ``churn``, and control characters would forge lines in a terminal or a log."""
    return _text_problem(name, MAX_NAME, blank=True)


def _checked_name(name: str) -> str:
    problem = name_problem(name)
    if problem:
        raise ValueError(f"the name {name[:60]!r} {problem}")
    return name


Name = Annotated[str, AfterValidator(_checked_name)]  # an experiment's or a run's name


def dataset_text_problem(text: object) -> str | None:
    """What makes ``text`` unfit as the dataset name or digest a metric point names (MLflow
    3's link from a point to the data it was measured on), or None. A name is compared as
    it is, so it must be non-empty text that a line of JSON and a terminal show unchanged."""
    return _text_problem(text, MAX_DATASET_TEXT, blank=False)


def _checked_dataset_text(text: str) -> str:
    problem = dataset_text_problem(text)
    if problem:
        raise ValueError(f"the dataset name or digest {text[:60]!r} {problem}")
    return text


DatasetText = Annotated[str, AfterValidator(_checked_dataset_text)]  # a metric point's dataset name or digest
