"""Event schemas of A/B experiments: the definition and every lifecycle change.

Each lifecycle event is one immutable file (``ab/<key>/lifecycle/<id>.jsonl``, one
line), named by a time-sortable ID: several people or processes acting on one
experiment never append to one file, and git branches merge without conflict.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from .events import SCHEMA_VERSION
from .fields import INT64_MAX, Count, Timestamp
from .layout import FOLDER_NAME

_KEY = re.compile(f"^{FOLDER_NAME}$")
WEIGHT_TOLERANCE = 1e-9
# The largest feedback value, in magnitude: the sum of the squares of 2**63 values this big
# is still a finite float, so the statistics of a variant never overflow to inf or NaN.
FEEDBACK_MAX = 1e144
Phase = Annotated[int, Field(ge=1, le=INT64_MAX)]


def check_weights_sum(weights: list[float]) -> None:
    if any(w < 0 or w != w for w in weights):
        raise ValueError(f"weights must be non-negative, not {weights}")
    if abs(sum(weights) - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"weights must sum to 1, not {sum(weights):g} ({weights}); "
                         "they are never replaced by equal weights")


class _Model(BaseModel):
    # no inf or NaN anywhere: JSON has no form for them (inf was written as null, and the
    # experiment could no longer be read)
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Variant(_Model):
    name: str = Field(min_length=1, max_length=100)
    weight: float
    control: bool = False
    model: str | None = None  # a model reference: models:/name@alias or runs:/RUN/artifact
    url: str | None = None  # or the URL of the model service that serves this variant
    # online features ("view:feature") the router looks up by the request's entity key and
    # sends to this variant's model service with the request's own features
    features: list[str] = Field(default_factory=list)


class MetricSpec(_Model):
    name: str = Field(min_length=1, max_length=250)
    # binary: a unit converted or not; continuous: the sum of its values; ratio: the sum of
    # its `numerator` feedback over the sum of its `denominator` feedback (revenue per
    # session), pooled over units and analysed with the delta method
    kind: Literal["binary", "continuous", "ratio"]
    direction: Literal["increase", "decrease"] = "increase"  # which way is good
    # a conversion window: only feedback within this many seconds after the unit's first
    # exposure counts (and none before it); None: all the feedback of the phase
    window_seconds: float | None = Field(default=None, gt=0)
    numerator: str | None = Field(default=None, min_length=1, max_length=250)  # ratio metrics: feedback names
    denominator: str | None = Field(default=None, min_length=1, max_length=250)

    @model_validator(mode="after")
    def _ratio(self) -> MetricSpec:
        parts = (self.numerator, self.denominator)
        if self.kind == "ratio" and (None in parts or parts[0] == parts[1]):
            raise ValueError(f"ratio metric {self.name!r} needs a numerator and a denominator, two feedback names")
        if self.kind != "ratio" and parts != (None, None):
            raise ValueError(f"only a ratio metric has a numerator and a denominator, not {self.kind} {self.name!r}")
        return self

    @property
    def feedback(self) -> list[str]:
        """The feedback names this metric is made of (log_feedback takes these)."""
        if self.kind == "ratio" and self.numerator is not None and self.denominator is not None:
            return [self.numerator, self.denominator]  # (a ratio always has both: _ratio checks it)
        return [self.name]


class Hypothesis(_Model):
    null: str = Field(min_length=1)
    alternative: str = Field(min_length=1)


class ExperimentSpec(_Model):
    """What an experiment tests and how: validated before anything is written."""

    key: str
    hypothesis: Hypothesis
    primary: MetricSpec
    guardrails: list[MetricSpec] = Field(default_factory=list)
    variants: list[Variant]
    coverage: float = Field(default=1.0, gt=0, le=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    mde: float = Field(gt=0)  # minimum detectable effect, absolute unless mde_relative
    mde_relative: bool = False
    baseline: float | None = None  # binary KPI: the control's rate; continuous: its mean
    std: float | None = Field(default=None, gt=0)  # continuous KPI: its standard deviation
    sequential: bool = False  # always-valid intervals: safe to look every day
    namespace: tuple[str, float, float] | None = None  # mutually exclusive experiments
    # when a non-control variant's model service fails, the router answers with the
    # control's prediction instead of a 502/504 (the unit stays in its assigned variant)
    fallback_to_control: bool = False
    owner: str = Field(min_length=1)

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"experiment key {key!r} must be letters, digits, '_', '-', '.' "
                             "(at most 100, starting with a letter or digit)")
        return key

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        if len(self.variants) < 2:
            raise ValueError("an experiment needs at least two variants")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, not {names}")
        controls = [v.name for v in self.variants if v.control]
        if len(controls) != 1:
            raise ValueError(f"exactly one variant must be the control, not {len(controls)} ({controls})")
        check_weights_sum([v.weight for v in self.variants])
        if self.primary.kind == "binary" and (self.baseline is None or not 0 < self.baseline < 1):
            raise ValueError("a binary primary KPI needs its baseline rate in (0, 1)")
        if self.primary.kind == "ratio":
            raise ValueError("a ratio metric can be a guardrail; the primary KPI is binary or continuous "
                             "(its planned sample size needs one)")
        if self.primary.kind == "continuous" and self.std is None:
            raise ValueError("a continuous primary KPI needs its standard deviation (std)")
        if self.namespace is not None and not 0 <= self.namespace[1] < self.namespace[2] <= 1:
            raise ValueError(f"a namespace's range must be within [0, 1] and not empty, not "
                             f"{list(self.namespace[1:])}")
        return self

    @property
    def control(self) -> str:
        return next(v.name for v in self.variants if v.control)

    @property
    def metrics(self) -> list[MetricSpec]:
        return [self.primary, *self.guardrails]

    @property
    def feedback_names(self) -> list[str]:
        """Every name ``log_feedback`` takes: the metrics', a ratio's numerator and denominator."""
        return list(dict.fromkeys(name for metric in self.metrics for name in metric.feedback))


class AbEvent(_Model):
    v: int = 1  # each kind of file event is still at its first schema
    type: str
    ts: Timestamp
    experiment: str
    by: str | None = None  # who did it
    reason: str | None = None


class Created(AbEvent):
    type: Literal["ab_created"] = "ab_created"
    spec: ExperimentSpec
    min_sample_size: dict[str, Count]  # per variant, from alpha, power and the MDE
    seed: str


class Started(AbEvent):
    type: Literal["ab_started"] = "ab_started"


class Paused(AbEvent):
    type: Literal["ab_paused"] = "ab_paused"


class Stopped(AbEvent):
    type: Literal["ab_stopped"] = "ab_stopped"
    winner: str | None = None  # None: no variant wins, the control stays


class NewPhase(AbEvent):
    """New weights (or variants): a new hashing seed, so earlier exposures do not bias."""

    type: Literal["ab_phase"] = "ab_phase"
    weights: dict[str, float]
    seed: str

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        check_weights_sum(list(weights.values()))
        return weights


class CoverageChanged(AbEvent):
    """Coverage moves no unit between variants: same phase, same seed."""

    type: Literal["ab_coverage"] = "ab_coverage"
    coverage: float = Field(gt=0, le=1)


AnyAbEvent = Annotated[Union[Created, Started, Paused, Stopped, NewPhase, CoverageChanged],
                       Field(discriminator="type")]
AB_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyAbEvent)


# -- the exposure and feedback logs: many lines per file, one writer per file ----------

class _LogLine(BaseModel):
    """A line of an experiment's exposure and feedback log (``ab/<key>/log/*.jsonl``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    v: int = Field(ge=1, le=SCHEMA_VERSION)
    type: str
    ts: Timestamp
    experiment: str
    seq: Count
    unit: str = Field(min_length=1)


class Exposure(_LogLine):
    """A unit was served a variant in a phase; ``attributes`` (country, platform...) let
    results be read by dimension (the unit's first exposure's values count)."""

    type: Literal["exposure"] = "exposure"
    variant: str = Field(min_length=1)
    phase: Phase
    attributes: dict[Annotated[str, Field(min_length=1, max_length=100)],
                     Annotated[str, Field(max_length=250)]] | None = None


class Feedback(_LogLine):
    """A KPI value of a unit (a conversion is 1.0)."""

    type: Literal["feedback"] = "feedback"
    metric: str = Field(min_length=1)
    value: float = Field(ge=-FEEDBACK_MAX, le=FEEDBACK_MAX)


LOG_LINE_ADAPTER: TypeAdapter[Any] = TypeAdapter(
    Annotated[Union[Exposure, Feedback], Field(discriminator="type")])
