"""Event schemas of the feature store: definitions, materializations, saved training sets.

Each event is one immutable file, ``features/<id>.jsonl``, named by its time-sortable ID,
so definitions are versioned in git and branches merge like runs. The feature data
stays in the user's Parquet or CSV files; the online store is derived (``.cache/``).
A definition applied again replaces the earlier one at read time (the last by ID wins),
and the earlier versions stay in the history.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from .eventfiles import FileEvent
from .fields import Count, Sha256

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")  # usable as a column and a SQL name
FEATURE_TYPES = ("float", "int", "string", "bool")


class FeatureEvent(FileEvent):
    """A feature store event (the envelope alone)."""


class EntityApplied(FeatureEvent):
    type: Literal["entity_applied"] = "entity_applied"
    name: str
    join_keys: list[str]
    description: str | None = None


class ViewApplied(FeatureEvent):
    type: Literal["view_applied"] = "view_applied"
    name: str
    entity: str
    source: str  # a Parquet or CSV file, relative to the store's parent when it lies inside it
    timestamp_field: str
    created_timestamp_field: str | None = None
    ttl_seconds: float | None = None
    ttl: str | None = None  # as the user wrote it
    features: dict[str, Literal["float", "int", "string", "bool"]]
    description: str | None = None


class Materialized(FeatureEvent):
    type: Literal["materialized"] = "materialized"
    view: str
    start: float | None = None  # event-time window, epoch seconds; None: from the beginning
    end: float
    source_sha256: str
    source_rows: int
    rows_in_window: int
    keys_written: int
    seconds: float


class DatasetSaved(FeatureEvent):
    type: Literal["dataset_saved"] = "dataset_saved"
    name: str
    sha256: Sha256
    rows: Count
    columns: list[str]
    path: str  # the Parquet file, relative to the store root (informative: loads go by sha256)
    features: list[str] = Field(default_factory=list)  # the refs that made it, when known


AnyFeatureEvent = Annotated[Union[EntityApplied, ViewApplied, Materialized, DatasetSaved],
                            Field(discriminator="type")]
FEATURE_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyFeatureEvent)
