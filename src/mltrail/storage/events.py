"""The event schemas: every fact mltrail stores is one of these, one JSON object a line.

All events share one envelope (:class:`Event`): the schema version ``v``, the ``type``
discriminator, a UTC timestamp ``ts`` (seconds since the epoch), the ``run`` they
belong to and the ``seq`` number that orders them inside their file. ``(run, seq)``
identifies an event; the experiment is named by the run's ``run_started`` event.

Field names are stable and never change meaning. Two event types never use one field
name with two JSON types, so a columnar JSON reader can read any mix of them.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Any, Literal, Union

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from ..errors import InvalidInputError
from .fields import INT64_MAX, LATEST_TS, Count, DatasetText, FiniteFloat, Int64, Name, Sha256, Timestamp
from .layout import check_key

# the newest a reader understands: 2 added the dense `metrics` line, 3 a metric point's
# dataset (a line holding one is written as v3, so an older reader says it is newer than it
# knows instead of reading the points without their dataset), 4 the `histogram` line
SCHEMA_VERSION = 4
MAX_BINS = 1024  # a histogram's bins: a chart's height in pixels is about this


class RunStatus(str, Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CRASHED = "CRASHED"  # derived at read time, never written


class Event(BaseModel):
    """The envelope every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: int = 1  # the schema that introduced the line's type, or the newest field it holds
    type: str
    ts: Timestamp
    run: str
    seq: Count = 0


def _keys_checked(kind: str) -> AfterValidator:
    def check(mapping: dict[str, str]) -> dict[str, str]:
        for key in mapping:
            check_key(kind, key)
        return mapping
    return AfterValidator(check)


TagMap = Annotated[dict[str, str], _keys_checked("tag")]
ParamMap = Annotated[dict[str, str], _keys_checked("param")]


class RunStarted(Event):
    type: Literal["run_started"] = "run_started"
    experiment: Name  # fixed by the run's first line, forever: a later run_started is refused
    experiment_description: str | None = None
    name: Name | None = None
    description: str | None = None
    tags: TagMap = Field(default_factory=dict)


class Params(Event):
    type: Literal["params"] = "params"
    params: ParamMap
    group: str | None = None


class Metric(Event):
    """One metric point. NaN and ±inf have no JSON form: ``value`` is then null and
    ``nonfinite`` holds ``"nan"``, ``"inf"`` or ``"-inf"``. ``dataset_name`` and
    ``dataset_digest`` (schema 3, both or neither) name the dataset it was measured on, as
    MLflow 3 links a point to one."""

    type: Literal["metric"] = "metric"
    key: str
    value: FiniteFloat | None
    step: Int64
    best: bool | None = None
    nonfinite: Literal["nan", "inf", "-inf"] | None = None
    dataset_name: DatasetText | None = None
    dataset_digest: DatasetText | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return check_key("metric", key)

    @model_validator(mode="after")
    def _dataset_pair(self) -> Metric:
        if (self.dataset_name is None) != (self.dataset_digest is None):
            raise ValueError("dataset_name and dataset_digest name a dataset together: give both or neither")
        return self


class Metrics(Event):
    """The metric points of one flush, dense (schema 2): ~30 bytes a point where a
    ``metric`` line takes ~140. Point ``i`` is ``keys[k[i]]`` = ``values[i]`` at step
    ``steps[i]``, logged at ``ts + dts[i] / 1000`` (ms); its seq is ``seq + i``, so points
    order exactly as one-point lines do. NaN and ±inf are null in ``values``, their kind in
    ``special`` at the indices ``special_at``; ``best_at`` lists the points marked best.

    Schema 3: point ``i`` was measured on dataset ``datasets[d[i]]`` (a name and a digest,
    MLflow 3's link), or on none where ``d[i]`` is null. A line whose points name no
    dataset leaves both out, so it costs nothing where no dataset is named."""

    v: int = 2
    type: Literal["metrics"] = "metrics"
    keys: list[str]
    k: list[Count]
    steps: list[Int64]
    values: list[FiniteFloat | None]
    dts: list[Int64]
    best_at: list[Count] = Field(default_factory=list)
    special_at: list[Count] = Field(default_factory=list)
    special: list[Literal["nan", "inf", "-inf"]] = Field(default_factory=list)
    datasets: list[tuple[DatasetText, DatasetText]] = Field(default_factory=list)
    d: list[Count | None] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        return [check_key("metric", key) for key in keys]

    @model_validator(mode="after")
    def _consistent(self) -> Metrics:
        count = len(self.steps)
        if not count or {len(self.k), len(self.values), len(self.dts)} != {count}:
            raise ValueError("k, steps, values and dts must hold one entry per point")
        if max(self.k) >= len(self.keys):
            raise ValueError("k names a key that keys does not hold")
        if len(self.special) != len(self.special_at) or any(i >= count for i in self.special_at + self.best_at):
            raise ValueError("special_at, special and best_at must name points of this line")
        nulls = {i for i, value in enumerate(self.values) if value is None}
        if nulls != set(self.special_at):
            raise ValueError("a null value must be a NaN or ±inf named in special")
        if (self.d or self.datasets) and (len(self.d) != count or not self.datasets
                                           or any(i is not None and i >= len(self.datasets) for i in self.d)):
            raise ValueError("d must hold one entry per point, each null or the index of one of datasets")
        # each point's own time and seq must fit where the line's do: a dts of 2**63-1 is
        # an int64 here and a time past any Parquet timestamp once added to ts
        if not (0.0 <= self.ts + min(self.dts) / 1000 and self.ts + max(self.dts) / 1000 <= LATEST_TS):
            raise ValueError("every point's time (ts + dts / 1000) must lie between 1970 and 3000")
        if self.seq + count - 1 > INT64_MAX:
            raise ValueError("the line's points run past the largest seq (2**63 - 1)")
        return self


class Histogram(Event):
    """One histogram of a run's values at a step (weights, gradients, activations), as
    TensorBoard and W&B log them (schema 4). ``counts[i]`` values fell in bin ``i``: between
    ``edges[i]`` and ``edges[i + 1]``, or, for bins of equal width (the common case, and
    denser: no edges written), in ``[lo + i * w, lo + (i + 1) * w)`` with ``w = (hi - lo) /
    len(counts)``. Non-finite values are counted in ``dropped``, not in a bin."""

    v: int = 4
    type: Literal["histogram"] = "histogram"
    key: str
    step: Int64
    counts: Annotated[list[Count], Field(min_length=1, max_length=MAX_BINS)]
    lo: FiniteFloat | None = None
    hi: FiniteFloat | None = None
    edges: Annotated[list[FiniteFloat], Field(max_length=MAX_BINS + 1)] | None = None
    dropped: Count | None = None  # (not `nonfinite`: a metric line's field of another JSON type)

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return check_key("histogram", key)

    @model_validator(mode="after")
    def _bins(self) -> Histogram:
        if self.edges is not None:
            if self.lo is not None or self.hi is not None:
                raise ValueError("a histogram has edges or lo and hi, not both")
            if len(self.edges) != len(self.counts) + 1:
                raise ValueError(f"{len(self.counts)} counts need {len(self.counts) + 1} edges, "
                                 f"not {len(self.edges)}")
            if any(b <= a for a, b in zip(self.edges, self.edges[1:])):
                raise ValueError("a histogram's edges must increase")
        elif self.lo is None or self.hi is None or not self.lo < self.hi:
            raise ValueError("a histogram needs edges, or lo < hi for bins of equal width")
        return self

    def bin_edges(self) -> list[float]:
        if self.edges is not None:
            return list(self.edges)
        assert self.lo is not None and self.hi is not None
        width = (self.hi - self.lo) / len(self.counts)
        return [self.lo + i * width for i in range(len(self.counts))] + [self.hi]


class Tags(Event):
    type: Literal["tags"] = "tags"
    tags: TagMap


class TagDeleted(Event):
    type: Literal["tag_deleted"] = "tag_deleted"
    key: str


class Artifact(Event):
    type: Literal["artifact"] = "artifact"
    path: str  # the artifact's name inside the run, e.g. "model.pkl" or "plots/roc.png"
    sha256: Sha256
    size: Count
    in_git: bool  # False when larger than MLTRAIL_GIT_ARTIFACT_MAX (kept in blobs-large/)
    source: str | None = None  # where it was copied from, relative when possible

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        return check_key("artifact", path)


class Dataset(Event):
    type: Literal["dataset"] = "dataset"
    name: str
    path: str
    sha256: Sha256
    size: Count
    rows: Count | None = None
    columns: list[str] | None = None
    context: str | None = None  # "training", "validation", ...
    # what MLflow's client logged of a dataset (mltrail.mlflow_store): its digest, source type,
    # source, schema, profile and input tags, kept so MLflow reads back what it logged
    mlflow: dict[str, str | dict[str, str] | None] | None = None


class GitInfo(Event):
    type: Literal["git"] = "git"
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    remote: str | None = None
    repo_path: str | None = None  # the store's path relative to the repository root
    diff_sha256: Sha256 | None = None  # the uncommitted diff, stored as a blob
    diff_bytes: Count | None = None
    diff_truncated: bool = False


class Environment(Event):
    type: Literal["environment"] = "environment"
    command: list[str] = Field(default_factory=list)
    script: str | None = None
    cwd: str | None = None
    python: str | None = None
    platform: str | None = None
    host: str | None = None
    user: str | None = None
    packages_sha256: Sha256 | None = None  # JSON {name: version}, stored as a blob
    package_count: Count | None = None


class Heartbeat(Event):
    type: Literal["heartbeat"] = "heartbeat"


class RunFinished(Event):
    type: Literal["run_finished"] = "run_finished"
    status: Literal["FINISHED", "FAILED", "KILLED"]
    error: str | None = None


class RunResumed(Event):
    """The run goes on (a restarted job after a crash or preemption): RUNNING again,
    until its next ``run_finished``. Schema 2."""

    v: int = 2
    type: Literal["run_resumed"] = "run_resumed"


# A validated line is one of these: code that branches on ``event.type`` narrows to its class.
RunEvent = Union[
    RunStarted, Params, Metric, Metrics, Histogram, Tags, TagDeleted, Artifact, Dataset, GitInfo,
    Environment, Heartbeat, RunFinished, RunResumed,
]
AnyEvent = Annotated[RunEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)
EVENT_TYPES = frozenset(
    model.model_fields["type"].default
    for model in (RunStarted, Params, Metric, Metrics, Histogram, Tags, TagDeleted, Artifact, Dataset,
                  GitInfo, Environment, Heartbeat, RunFinished, RunResumed)
)

NONFINITE_VALUES = {  # how a metric event's `nonfinite` field reads back
    "nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def nonfinite_name(value: float) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite float, else None."""
    if value != value:
        return "nan"
    if value == math.inf:
        return "inf"
    if value == -math.inf:
        return "-inf"
    return None


def dump(event: Event) -> dict[str, Any]:
    """The JSON-ready dict of an event, without fields left at None.

    Raises InvalidInputError if the event cannot be written as UTF-8 JSON (a string
    with a lone surrogate, say), so that a bad value fails where it was logged and
    never later, in a flush.
    """
    data = event.model_dump(mode="json", exclude_none=True)
    try:
        orjson.dumps(data)
    except TypeError as exc:
        raise InvalidInputError(f"{event.type} event cannot be stored: {exc}") from None
    return data
