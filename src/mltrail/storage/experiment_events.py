"""Event schemas of an experiment's own facts: that it exists (before any run), its ID, its
tags, whether it is deleted. MLflow has them and an experiment made by MLflow's client keeps
them here (mltrail's own experiments exist through their runs and need none of this).

Each event is one immutable file, ``experiments/<experiment>/meta/<id>.jsonl``, named by the
event's time-sortable ID, so two branches that tag one experiment merge as the union of
their files. Replayed in ID order, the latest event about a tag or the lifecycle wins.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter

from .eventfiles import FileEvent

# an experiment ID as MLflow's clients pass it around: digits ("0" is the Default
# experiment), at most 19 of them so it fits the int64 some MLflow clients parse it into
EXPERIMENT_ID = r"^[0-9]{1,19}$"


class ExperimentEvent(FileEvent):
    """The envelope, plus the experiment's name (its folder is derived from it)."""

    experiment: str


class ExperimentCreated(ExperimentEvent):
    """The experiment exists, with the ID MLflow's clients know it by. Two creations of one
    name (two machines, then a merge) agree on the ID when it was derived from the name;
    otherwise the earliest wins."""

    type: Literal["experiment_created"] = "experiment_created"
    experiment_id: Annotated[str, Field(pattern=EXPERIMENT_ID)]
    artifact_location: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentTagSet(ExperimentEvent):
    type: Literal["experiment_tag_set"] = "experiment_tag_set"
    key: str
    value: str


class ExperimentTagDeleted(ExperimentEvent):
    type: Literal["experiment_tag_deleted"] = "experiment_tag_deleted"
    key: str


class ExperimentDeleted(ExperimentEvent):
    type: Literal["experiment_deleted"] = "experiment_deleted"


class ExperimentRestored(ExperimentEvent):
    type: Literal["experiment_restored"] = "experiment_restored"


AnyExperimentEvent = Annotated[
    Union[ExperimentCreated, ExperimentTagSet, ExperimentTagDeleted, ExperimentDeleted, ExperimentRestored],
    Field(discriminator="type")]
EXPERIMENT_EVENT_ADAPTER: TypeAdapter[AnyExperimentEvent] = TypeAdapter(AnyExperimentEvent)
