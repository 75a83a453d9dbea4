"""Event schemas of saved views: a named look at runs (experiments, filter, order, columns,
charts and their grouping) that a team shares through the store, as W&B's saved workspaces.

Each save is one immutable file, ``views/<name>/<id>.jsonl``, named by the event's
time-sortable ID, so a view saved on one branch and another (or the same one, changed) on a
second branch merge as the union of their files. Replayed in ID order, the latest save wins;
the first save's ``by`` is the view's author, the one who may change or delete it on a server.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter, field_validator

from .eventfiles import FileEvent
from .fields import Name
from .layout import FOLDER_NAME

VIEW_NAME = rf"^{FOLDER_NAME}$"  # a folder under views/ and a URL path segment
BANDS = ("std", "minmax", "ci")
X_AXES = ("step", "time")
MAX_LIST = 100  # columns, charts, group_by: what a page shows, not a dump


class ViewEvent(FileEvent):
    name: Annotated[str, Field(pattern=VIEW_NAME)]


class ViewSaved(ViewEvent):
    """The whole view as saved (a save replaces every field: no merge of two saves)."""

    type: Literal["view_saved"] = "view_saved"
    experiments: Annotated[list[Name], Field(max_length=MAX_LIST)] = Field(default_factory=list)  # [] = all
    filter: Annotated[str, Field(max_length=10_000)] = ""
    order_by: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=MAX_LIST)] = \
        Field(default_factory=list)
    columns: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=MAX_LIST)] = \
        Field(default_factory=list)
    charts: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=MAX_LIST)] = \
        Field(default_factory=list)  # metric keys drawn
    group_by: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=MAX_LIST)] = \
        Field(default_factory=list)  # params.x / tags.y: the charts' groups
    band: Literal["std", "minmax", "ci"] = "std"
    x: Literal["step", "time"] = "step"
    smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    description: Annotated[str, Field(max_length=10_000)] = ""

    @field_validator("group_by")
    @classmethod
    def _groupable(cls, columns: list[str]) -> list[str]:
        wrong = [c for c in columns if not c.startswith(("params.", "tags."))]
        if wrong:
            raise ValueError(f"group_by takes params.<name> and tags.<name> columns, not {wrong[0]!r}")
        return columns


class ViewDeleted(ViewEvent):
    type: Literal["view_deleted"] = "view_deleted"


AnyViewEvent = Annotated[Union[ViewSaved, ViewDeleted], Field(discriminator="type")]
VIEW_EVENT_ADAPTER: TypeAdapter[AnyViewEvent] = TypeAdapter(AnyViewEvent)
