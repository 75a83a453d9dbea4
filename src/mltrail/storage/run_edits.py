"""Curation of runs as events: a rename, notes, a tag set or removed, a run deleted or
restored, after the run (or by someone other than its writer).

A run's own file has one writer, the run's process, so a change made from the Run page,
the CLI or another job is an immutable file of its own beside the runs folder,
``experiments/<exp>/edits/<id>.jsonl``: two people curating on two git branches merge as
the union, and nothing is rewritten. Compaction folds the edits over what the run logged
itself: an edit wins over the run's own value, and among edits of one field the latest
(time, then ID) wins, whatever order the files are read in (a merge brings older edits
in late). A deleted run is only hidden; ``mltrail gc`` purges it.

The run's name and notes are tags with reserved keys, as MLflow keeps them
(``mlflow.runName``, ``mlflow.note.content``): a run renames itself with a ``tags``
line in its own file, and an edit renames it with a ``run_tags`` file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter

from .eventfiles import FileEvent
from .events import TagMap

NAME_TAG = "mltrail.name"  # the run's name, as it was last set
NOTES_TAG = "mltrail.notes"  # its notes (Markdown): the run's description, as it was last set
RESERVED_TAGS = (NAME_TAG, NOTES_TAG)  # shown as the run's name and description, not as tags


class RunEdit(FileEvent):
    """The envelope of an edit: which run, when, by whom; named by its ``id``."""

    run: str


class RunTagsSet(RunEdit):
    type: Literal["run_tags"] = "run_tags"
    tags: TagMap


class RunTagRemoved(RunEdit):
    type: Literal["run_tag_removed"] = "run_tag_removed"
    key: str


class RunDeleted(RunEdit):
    type: Literal["run_deleted"] = "run_deleted"


class RunRestored(RunEdit):
    type: Literal["run_restored"] = "run_restored"


AnyRunEdit = Annotated[Union[RunTagsSet, RunTagRemoved, RunDeleted, RunRestored], Field(discriminator="type")]
RUN_EDIT: TypeAdapter[Any] = TypeAdapter(AnyRunEdit)


def edit_rows(edit: RunEdit) -> list[dict[str, Any]]:
    """An edit as rows of the ``run_edits`` table: one per tag it sets."""
    base = {"run_id": edit.run, "edit_id": edit.id, "ts": edit.ts, "by": edit.by}
    if isinstance(edit, RunTagsSet):
        return [{**base, "kind": "tag", "key": key, "value": value} for key, value in sorted(edit.tags.items())]
    if isinstance(edit, RunTagRemoved):
        return [{**base, "kind": "untag", "key": edit.key, "value": None}]
    return [{**base, "kind": "delete" if isinstance(edit, RunDeleted) else "restore", "key": None, "value": None}]


class Overlay:
    """What a run's edits make of it, folded in (time, ID) order: tags set (a value) or
    removed (None), and whether it is deleted and since when."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.tags: dict[str, str | None] = {}
        self.deleted = False
        self.deleted_at: float | None = None
        for row in sorted(rows, key=lambda r: (r["ts"], r["edit_id"])):
            if row["kind"] == "tag":
                self.tags[row["key"]] = row["value"]
            elif row["kind"] == "untag":
                self.tags[row["key"]] = None
            elif row["kind"] == "delete":
                self.deleted, self.deleted_at = True, row["ts"]
            else:
                self.deleted, self.deleted_at = False, None


def describe_edit(kind: str, key: str | None, value: str | None) -> str:
    """One edit as a phrase: 'renamed to 'x'', 'tag k = v', 'deleted'..."""
    if kind == "tag":
        if key == NAME_TAG:
            return f"renamed to {value!r}"
        if key == NOTES_TAG:
            return "notes set" if value else "notes cleared"
        return f"tag {key} = {value}"
    return f"tag {key} removed" if kind == "untag" else f"{kind}d"  # deleted, restored
