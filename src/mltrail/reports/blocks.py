"""A report's Markdown cut into prose and blocks.

A block is a fenced code block whose info string is ``mltrail <kind>`` and whose body is
YAML, so a report reads as plain text in a git diff or on a code host::

    ```mltrail runs
    experiment: wine
    filter: metrics.rmse < 0.8
    order_by: metrics.rmse ASC
    columns: [params.alpha, metrics.rmse]
    limit: 5
    ```

The kinds: ``runs`` (a table of the runs a filter finds), ``chart`` (their metric curves,
one line per run, or grouped by params/tags with a band), ``value`` (one number: the first
run's, or a statistic over the runs), ``ab`` (an A/B experiment's results). Each of
``runs``, ``chart`` and ``value`` selects runs by ``experiment``, ``filter`` and
``order_by``, or by a saved ``view`` whose fields the block's own override. Fences are
found by a CommonMark parser (markdown-it), as a code host finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from markdown_it import MarkdownIt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..tracking.reports import front_matter

LANGUAGE = "mltrail"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = None


class _Selection(_Spec):
    view: str | None = None
    experiment: str | list[str] | None = None
    filter: str | None = None
    order_by: str | list[str] | None = None


class RunsSpec(_Selection):
    kind: Literal["runs"] = "runs"
    columns: list[str] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 10


class ChartSpec(_Selection):
    kind: Literal["chart"] = "chart"
    metrics: str | Annotated[list[str], Field(max_length=12)] | None = None
    group_by: str | list[str] | None = None
    band: Literal["std", "minmax", "ci"] | None = None
    x: Literal["step", "time"] | None = None
    smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 10  # lines, when not grouped


class ValueSpec(_Selection):
    kind: Literal["value"] = "value"
    column: str  # metrics.f1, params.lr, ...
    stat: Literal["first", "min", "max", "mean", "median", "count"] = "first"


class AbSpec(_Spec):
    kind: Literal["ab"] = "ab"
    experiment: str
    metrics: str | list[str] | None = None


SPECS: dict[str, type[_Spec]] = {"runs": RunsSpec, "chart": ChartSpec, "value": ValueSpec, "ab": AbSpec}
Spec = RunsSpec | ChartSpec | ValueSpec | AbSpec


@dataclass(frozen=True)
class Prose:
    text: str  # Markdown


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based, in the whole file
    kind: str
    source: str  # the block's YAML, as written
    spec: Spec | None
    problem: str | None = None  # why it cannot be drawn (spec is None then)


def as_list(value: str | list[str] | None) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def parse(text: str) -> list[Prose | Block]:
    """The report's prose and blocks, in order (its front matter left out)."""
    _, body = front_matter(text)
    offset = text[:len(text) - len(body)].count("\n")  # the front matter's lines
    lines = body.splitlines(keepends=True)
    pieces: list[Prose | Block] = []
    done = 0
    for token in MarkdownIt("commonmark").parse(body):
        words = token.info.split()
        if token.type != "fence" or not words or words[0] != LANGUAGE or token.map is None:
            continue
        start, end = token.map
        prose = "".join(lines[done:start])
        if prose.strip():
            pieces.append(Prose(prose))
        pieces.append(_block(words[1] if len(words) > 1 else "", token.content, offset + start + 1))
        done = end
    rest = "".join(lines[done:])
    if rest.strip():
        pieces.append(Prose(rest))
    return pieces


def _block(kind: str, source: str, line: int) -> Block:
    where = f"the block at line {line}"
    if kind not in SPECS:
        return Block(line, kind, source, None, f"{where}: ```mltrail {kind or '?'}``` is not a block kind "
                                                f"(one of {', '.join(SPECS)})")
    try:
        fields: Any = yaml.safe_load(source) if source.strip() else {}
    except yaml.YAMLError as exc:
        return Block(line, kind, source, None, f"{where} ({kind}): its YAML does not parse: "
                                               f"{str(exc).splitlines()[0]}")
    if not isinstance(fields, dict):
        return Block(line, kind, source, None, f"{where} ({kind}): its body must be YAML fields (key: value)")
    try:
        spec = SPECS[kind].model_validate({**fields, "kind": kind})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or kind}: {e['msg']}" for e in exc.errors())
        return Block(line, kind, source, None, f"{where} ({kind}): {problems}")
    return Block(line, kind, source, spec)  # type: ignore[arg-type]  # one of SPECS' models
