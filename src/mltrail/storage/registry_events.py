"""Event schemas of the model registry: a model's creation, its versions, alias moves.

Each event is one immutable file, ``registry/<model>/<id>.jsonl`` (one line), named by
the event's time-sortable ID: two branches that both register a version merge as the
union of their files, with no conflict. Version numbers (1, 2, 3...) are not stored:
they are the order of ``version_registered`` events by ID, decided at read time, so
every clone numbers the same files the same way. Aliases and archives name a version
by its ID, which never changes, not by its number, which can after a merge.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from .eventfiles import FileEvent
from .fields import Count, Sha256
from .layout import FOLDER_NAME

MODEL_NAME = re.compile(f"^{FOLDER_NAME}$")
ALIAS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)


class RegistryEvent(FileEvent):
    """The envelope, plus the model the event belongs to."""

    model: str


class ModelCreated(RegistryEvent):
    type: Literal["model_created"] = "model_created"
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class VersionRegistered(RegistryEvent):
    """A version: one artifact of one run, with what the run knew when it was registered."""

    type: Literal["version_registered"] = "version_registered"
    run: str
    experiment: str
    run_name: str | None = None
    artifact: str
    sha256: Sha256
    size: Count
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)  # the run's final values
    datasets: list[dict[str, Any]] = Field(default_factory=list)  # name, path, sha256, rows, context
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class AliasSet(RegistryEvent):
    type: Literal["alias_set"] = "alias_set"
    alias: str
    version: str  # the version's ID
    previous: str | None = None  # the version's ID the alias pointed at before, if any
    reason: str | None = None
    promotion: dict[str, Any] | None = None  # set by promote_winner: the experiment and its result


class AliasDeleted(RegistryEvent):
    type: Literal["alias_deleted"] = "alias_deleted"
    alias: str
    previous: str
    reason: str | None = None


class VersionArchived(RegistryEvent):
    type: Literal["version_archived"] = "version_archived"
    version: str
    reason: str | None = None


AnyRegistryEvent = Annotated[Union[ModelCreated, VersionRegistered, AliasSet, AliasDeleted, VersionArchived],
                             Field(discriminator="type")]
REGISTRY_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyRegistryEvent)
