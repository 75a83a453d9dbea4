"""Event schemas of MLflow 3's logged models: a model made by a run (or without one), its
params, tags, status, metrics and files.

Each event is one immutable file, ``experiments/<experiment>/models/<model ID>/<id>.jsonl``,
named by the event's time-sortable ID, so two branches that tag one model merge as the
union of their files. Replayed in ID order, the latest event about a tag or the status
wins. A model's files are content-addressed blobs, like a run's artifacts: the events name
them by sha256, so ``gc`` keeps a blob a model still names.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from .eventfiles import FileEvent
from .events import ParamMap, TagMap
from .fields import Count, FiniteFloat, Int64, Name, Sha256, Timestamp
from .layout import check_key

# MLflow's form of a logged model's ID: "m-" and 32 hex digits (mltrail writes a ULID's
# 128 bits there, so its IDs sort by creation time; MLflow's own are a uuid4's)
MODEL_ID = r"^m-[0-9a-f]{32}$"
ModelId = Annotated[str, Field(pattern=MODEL_ID)]
STATUSES = ("PENDING", "READY", "FAILED", "UNSPECIFIED")  # MLflow's LoggedModelStatus
Status = Literal["PENDING", "READY", "FAILED", "UNSPECIFIED"]


class LoggedModelEvent(FileEvent):
    """The envelope, plus the model the event belongs to."""

    model_id: ModelId


class LoggedModelCreated(LoggedModelEvent):
    """The model exists, in ``experiment`` (by name: its folder), PENDING until finalized."""

    type: Literal["logged_model_created"] = "logged_model_created"
    experiment: Name
    name: Name
    model_type: str | None = None
    source_run_id: str | None = None
    params: ParamMap = Field(default_factory=dict)
    tags: TagMap = Field(default_factory=dict)


class LoggedModelParamsLogged(LoggedModelEvent):
    type: Literal["logged_model_params"] = "logged_model_params"
    params: ParamMap


class LoggedModelFinalized(LoggedModelEvent):
    type: Literal["logged_model_finalized"] = "logged_model_finalized"
    status: Status


class LoggedModelTagsSet(LoggedModelEvent):
    type: Literal["logged_model_tags_set"] = "logged_model_tags_set"
    tags: TagMap


class LoggedModelTagDeleted(LoggedModelEvent):
    type: Literal["logged_model_tag_deleted"] = "logged_model_tag_deleted"
    key: str


class LoggedModelDeleted(LoggedModelEvent):
    type: Literal["logged_model_deleted"] = "logged_model_deleted"


class ModelFile(BaseModel):
    """One file of a model, by its path inside the model's folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: Sha256
    size: Count
    in_git: bool  # False when larger than MLTRAIL_GIT_ARTIFACT_MAX (kept in blobs-large/)

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        return check_key("artifact", path)


class LoggedModelFiles(LoggedModelEvent):
    """Files written into the model's folder by one upload (MLflow sends a saved model's
    whole folder at once: one event, not one per file). A path written again is replaced."""

    type: Literal["logged_model_files"] = "logged_model_files"
    files: Annotated[list[ModelFile], Field(min_length=1)]


class ModelMetric(BaseModel):
    """A metric point of a model: NaN and ±inf have no JSON form, so ``value`` is then null
    and ``nonfinite`` names it (as a run's metric events do)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    value: FiniteFloat | None = None  # (an event file leaves nulls out)
    nonfinite: Literal["nan", "inf", "-inf"] | None = None
    step: Int64 = 0
    timestamp: Timestamp  # seconds since the epoch
    dataset_name: str | None = None
    dataset_digest: str | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return check_key("metric", key)

    @model_validator(mode="after")
    def _finite_or_named(self) -> ModelMetric:
        if (self.value is None) == (self.nonfinite is None):
            raise ValueError("a metric point has a finite value or names its non-finite one, not both or neither")
        return self


class LoggedModelMetrics(LoggedModelEvent):
    """Metric points of the model, as logged by a run (``run_id``) or on their own."""

    type: Literal["logged_model_metrics"] = "logged_model_metrics"
    run_id: str | None = None
    metrics: Annotated[list[ModelMetric], Field(min_length=1)]


class LoggedModelOutput(LoggedModelEvent):
    """The model is an output of run ``run_id`` (at ``step``): MLflow's run outputs."""

    type: Literal["logged_model_output"] = "logged_model_output"
    run_id: str
    step: Int64 = 0


AnyLoggedModelEvent = Annotated[
    Union[LoggedModelCreated, LoggedModelParamsLogged, LoggedModelFinalized, LoggedModelTagsSet,
          LoggedModelTagDeleted, LoggedModelDeleted, LoggedModelFiles, LoggedModelMetrics, LoggedModelOutput],
    Field(discriminator="type")]
LOGGED_MODEL_EVENT_ADAPTER: TypeAdapter[AnyLoggedModelEvent] = TypeAdapter(AnyLoggedModelEvent)
