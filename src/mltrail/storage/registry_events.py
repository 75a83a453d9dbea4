"""Event schemas of the model registry: a model's creation, its versions, alias moves.

Each event is one immutable file, ``registry/<model>/<id>.jsonl`` (one line), named by
the event's time-sortable ID: two branches that both register a version merge as the
union of their files, with no conflict. Version numbers (1, 2, 3...) are not stored:
they are the order of ``version_registered`` events by ID, decided at read time, so
every clone numbers the same files the same way. Aliases and archives name a version
by its ID, which never changes, not by its number, which can after a merge.

A version MLflow's clients register (through the ``mltrail:`` plugin or the server's MLflow
API) is a model *folder*, not one file: it keeps MLflow's ``source`` URI, the MLflow 3
logged model it came from, and the folder's files; ``artifact`` is then the file mltrail
loads (its pickle, else its ``MLmodel``). Tags and descriptions set later are events of their
own; a version deleted through MLflow is archived with ``deleted`` (hidden from MLflow's reads,
kept in the history). A version ``mltrail import mlflow`` could not bring the files of (its
source is outside the MLflow store, or was deleted there) is still a version, so that every
later one keeps MLflow's number: it has no ``artifact``, and ``missing`` says why (a
version MLflow registered without a run has no ``run`` either). New fields are optional and
left out when unset, so files written without them read as before.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, model_validator

from .eventfiles import FileEvent
from .fields import Count, Sha256
from .layout import FOLDER_NAME
from .logged_model_events import ModelFile

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
    """A version: one artifact of one run, with what the run knew when it was registered;
    or, imported from MLflow without its files, the reason (``missing``) instead."""

    type: Literal["version_registered"] = "version_registered"
    run: str | None = None  # None: registered in MLflow without a run
    experiment: str | None = None
    run_name: str | None = None
    artifact: str | None = None  # None exactly when ``missing`` says why
    sha256: Sha256 | None = None
    size: Count | None = None
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float | None] = Field(default_factory=dict)  # the run's final values
    datasets: list[dict[str, Any]] = Field(default_factory=list)  # name, path, sha256, rows, context
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    source: str | None = None  # MLflow's source URI (models:/m-..., runs:/RUN/path, an artifact URI)
    model_id: str | None = None  # the MLflow 3 logged model it was registered from
    files: list[ModelFile] | None = None  # the model folder's files, by their path inside it
    missing: str | None = None  # why it has no files (an MLflow version imported without them)

    @model_validator(mode="after")
    def _files_or_why_not(self) -> VersionRegistered:
        held = (self.artifact, self.sha256, self.size)
        if self.missing is None and None in held:
            raise ValueError("a version names its artifact, sha256 and size, or says why it has none (missing)")
        if self.missing is not None and (held != (None, None, None) or self.files):
            raise ValueError("a version without files (missing) names no artifact, sha256, size or files")
        return self


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
    deleted: Literal[True] | None = None  # deleted through MLflow's API: gone for its clients


class TagSet(RegistryEvent):
    """A tag of the model (``version`` None) or of one version (by its ID)."""

    type: Literal["tag_set"] = "tag_set"
    key: Annotated[str, Field(min_length=1, max_length=250)]
    value: str
    version: str | None = None


class TagDeleted(RegistryEvent):
    type: Literal["tag_deleted"] = "tag_deleted"
    key: str
    version: str | None = None


class DescriptionSet(RegistryEvent):
    """A new description of the model (``version`` None) or of one version."""

    type: Literal["description_set"] = "description_set"
    description: str | None = None
    version: str | None = None


AnyRegistryEvent = Annotated[Union[ModelCreated, VersionRegistered, AliasSet, AliasDeleted, VersionArchived,
                                   TagSet, TagDeleted, DescriptionSet],
                             Field(discriminator="type")]
REGISTRY_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyRegistryEvent)
