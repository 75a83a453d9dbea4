"""The server's reports: a remote store's ``store.reports``.

- ``GET /api/v1/reports``: every report's name, title, author and time
- ``GET /api/v1/reports/{name}``: one report, its text whole
- ``PUT /api/v1/reports/{name}`` (``{"text", "by"}``): save it, new or changed
- ``DELETE /api/v1/reports/{name}`` (``{"by"}``): delete it

A report's text is the team's prose: every user reads it. Its blocks are drawn by each
reader's own calls, which answer only the runs and A/B experiments they may read, so a
report shows each reader what they may see. Changing or deleting a report is for its
author (the first to save it, kept in its front matter) or an admin.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, TypeAdapter

from ..errors import NotFoundError
from ..store import Store
from ..tracking.reports import MAX_REPORT_BYTES, Report, check_name
from .authored import BY, locked, require_author
from .bodies import json_body, parsed
from .gate import Gate, gate


class _Save(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    by: str | None = None


_SAVE = TypeAdapter(_Save)


def routes(store: Store) -> APIRouter:
    api = APIRouter(prefix="/api/v1/reports")
    reports = store.reports

    def may_change(name: str, g: Gate) -> bool:
        """Whether the report exists; PermissionDeniedError when it is not the caller's to change."""
        if not reports.exists(name):
            return False
        require_author(g, f"report {name!r}", reports.author_of(name))
        return True

    @api.get("")
    def listed(g: Gate = Depends(gate)) -> list[dict[str, Any]]:
        del g  # (signed in: every user reads the reports)
        listed = reports.list()  # (a file that is not UTF-8 text is left out, as a folder's list does)
        listed["updated"] = listed["updated"].map(lambda t: t.timestamp())
        return listed.astype(object).where(listed.notna(), None).to_dict("records")

    @api.get("/{name}")
    def one(name: str, g: Gate = Depends(gate)) -> dict[str, Any]:
        del g
        return reports.get(name).to_dict()

    @api.put("/{name}", openapi_extra=json_body(_SAVE))
    async def save(name: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, _SAVE, f"a report (its text at most {MAX_REPORT_BYTES:,} bytes)")

        def save() -> Report:
            may_change(name, g)
            return reports.save(name, asked.text, by=g.by(asked.by))
        return (await locked(store, f"report-{check_name(name)}", f"report {name!r}", save)).to_dict()

    @api.delete("/{name}", openapi_extra=json_body(BY))
    async def delete(name: str, request: Request, g: Gate = Depends(gate)) -> dict[str, Any]:
        asked = await parsed(request, BY, "a report's deletion")

        def delete() -> None:
            if not may_change(name, g):
                raise NotFoundError(f"no report {name!r}")
            reports.delete(name, by=g.by(asked.by))
        await locked(store, f"report-{check_name(name)}", f"report {name!r}", delete)
        return {"report": name}

    return api
