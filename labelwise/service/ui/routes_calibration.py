"""Calibration sessions in the UI: leads create, read and close them; annotators
label the items blind with the keyboard.

- ``GET /projects/{project}/calibration``: leads and admins see every session
  and the create form; annotators and reviewers see the open sessions with
  their own progress;
- ``POST /projects/{project}/calibration``: create (CSRF checked) by rule or
  from external ids, then show the new session;
- ``GET /projects/{project}/calibration/{session_id}``: the report for leads
  (agreement, who answered, the items that split people, the close form); the
  blind labeling page for annotators and reviewers;
- ``POST /projects/{project}/calibration/{session_id}/close``: close, with an
  optional new guideline version;
- ``GET /ui/api/projects/{project}/calibration/{session_id}/next`` and ``POST
  …/answers``: the labeling page's JSON calls (``X-CSRF-Token`` header).

None of this touches the label queue: answers go to ``calibration_answers``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from labelwise.exceptions import InvalidInputError
from labelwise.service.api.deps import NowDep
from labelwise.service.store.calibration import (
    ANSWER_ROLES,
    MAX_SIZE,
    MIN_SIZE,
    answer_item,
    close_session,
    create_session,
    get_session,
    list_sessions,
    next_item,
    session_report,
)
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.members import get_visible_project
from labelwise.service.store.schema import Member
from labelwise.service.ui.auth import (
    CsrfHeader,
    UIMember,
    require_csrf,
    require_ui_member,
)
from labelwise.service.ui.routes_annotate import label_keys
from labelwise.service.ui.routes_review import (
    add_flash,
    pop_flashes,
    ui_project,
    ui_session_factory,
)
from labelwise.service.ui.templating import render

__all__ = ["LEAD_ROLES", "router"]

router = APIRouter()

#: Roles that create, read and close sessions.
LEAD_ROLES = ("lead", "admin")
ProjectName = Annotated[str, Path(min_length=1, max_length=200)]
SessionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class AnswerBody(BaseModel):
    """The labeling page's answer."""

    model_config = ConfigDict(extra="forbid")
    item_id: int = Field(ge=1, le=2**31 - 1)
    label: str | list[str]
    time_spent_ms: int | None = Field(default=None, ge=0, le=86_400_000)


def _url(project: str, session_id: int | None = None) -> str:
    base = f"/projects/{quote(project, safe='')}/calibration"
    return base if session_id is None else f"{base}/{session_id}"


@router.get("/projects/{project}/calibration")
def calibration_page(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """Sessions of the project (leads: all and the create form; others: open ones)."""
    with read_only(ui_session_factory(request)) as session:
        found = ui_project(
            session, member, project, LEAD_ROLES + ANSWER_ROLES, "calibration page"
        )
        sessions = list_sessions(session=session, project=found, member=member)
        context = {
            "project": found,
            "sessions": sessions,
            "is_lead": member.role in LEAD_ROLES,
            "min_size": MIN_SIZE,
            "max_size": MAX_SIZE,
            "flashes": pop_flashes(request),
        }
    return render(request, "calibration.html", context, member=member)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _create(
    request: Request, member: Member, project: str, form: dict[str, Any]
) -> int:
    with transaction(ui_session_factory(request)) as session:
        found = ui_project(session, member, project, LEAD_ROLES, "calibration page")
        rule = _text(form.get("rule")) or "manual"
        size_text = _text(form.get("size")) or "30"
        if not size_text.isdigit():
            raise InvalidInputError(
                f"The session size must be a whole number from {MIN_SIZE} to "
                f"{MAX_SIZE}. Got {size_text!r}.",
                hint="Type how many items the session should have, e.g. 30.",
            )
        external = [
            part.strip()
            for part in _text(form.get("external_ids")).replace(",", "\n").splitlines()
            if part.strip()
        ]
        row = create_session(
            session=session,
            project=found,
            creator=member,
            name=_text(form.get("name")),
            external_ids=external if rule == "manual" else None,
            rule=None if rule == "manual" else rule,
            size=int(size_text),
        )
        return row.id


@router.post("/projects/{project}/calibration")
async def create_calibration(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """Create a session from the form; then show it."""
    async with request.form() as form:
        require_csrf(request, form)
        fields = {
            key: form.get(key) for key in ("name", "rule", "size", "external_ids")
        }
    session_id = await run_in_threadpool(_create, request, member, project, fields)
    add_flash(request, f"Calibration session {session_id} created.")
    return RedirectResponse(_url(project, session_id), status_code=303)


@router.get("/projects/{project}/calibration/{session_id}")
def calibration_session_page(
    request: Request, member: UIMember, project: ProjectName, session_id: SessionId
) -> Response:
    """Leads: the report and the close form. Annotators: the blind labeling page."""
    with read_only(ui_session_factory(request)) as session:
        found = ui_project(
            session, member, project, LEAD_ROLES + ANSWER_ROLES, "calibration page"
        )
        row = get_session(session=session, project=found, session_id=session_id)
        if member.role in LEAD_ROLES:
            context = {
                "project": found,
                "report": session_report(session=session, project=found, cal=row),
                "flashes": pop_flashes(request),
            }
            return render(request, "calibration_report.html", context, member=member)
        context = {
            "project": found,
            "cal": row,
            "labels": label_keys([str(label) for label in found.labels]),
            "multi_label": found.multi_label,
            "text_field": found.text_field or "",
            "fields": list(found.fields or []),
        }
    return render(request, "calibrate.html", context, member=member)


def _close(
    request: Request,
    member: Member,
    project: str,
    session_id: int,
    guideline: str | None,
    note: str | None,
) -> int | None:
    with transaction(ui_session_factory(request)) as session:
        found = ui_project(session, member, project, LEAD_ROLES, "calibration page")
        row = get_session(session=session, project=found, session_id=session_id)
        close_session(
            session=session,
            project=found,
            cal=row,
            member=member,
            guideline=guideline,
            note=note,
        )
        return row.published_guideline_version


@router.post("/projects/{project}/calibration/{session_id}/close")
async def close_calibration(
    request: Request, member: UIMember, project: ProjectName, session_id: SessionId
) -> Response:
    """Close the session; guideline text in the form becomes a new version."""
    async with request.form() as form:
        require_csrf(request, form)
        guideline = _text(form.get("guideline")) or None
        note = _text(form.get("note")) or None
    version = await run_in_threadpool(
        _close, request, member, project, session_id, guideline, note
    )
    published = f"; guideline v{version} published" if version else ""
    add_flash(request, f"Calibration session {session_id} closed{published}.")
    return RedirectResponse(_url(project, session_id), status_code=303)


@router.get("/ui/api/projects/{project}/calibration/{session_id}/next")
def ui_calibration_next(
    request: Request, project: ProjectName, session_id: SessionId
) -> Any:
    """The member's next unanswered item, or ``{"done": true, …}``."""
    with read_only(ui_session_factory(request)) as session:
        member = require_ui_member(request, session)
        found = get_visible_project(session=session, member=member, name=project)
        row = get_session(session=session, project=found, session_id=session_id)
        shown = next_item(session=session, cal=row, member=member)
    return shown if shown is not None else {"done": True, "session_id": session_id}


@router.post("/ui/api/projects/{project}/calibration/{session_id}/answers")
def ui_calibration_answer(
    request: Request,
    project: ProjectName,
    session_id: SessionId,
    body: AnswerBody,
    _: CsrfHeader,
    now: NowDep,
) -> dict[str, Any]:
    """Record the member's answer; committed before the reply."""
    with transaction(ui_session_factory(request)) as session:
        member = require_ui_member(request, session)
        found = get_visible_project(session=session, member=member, name=project)
        row = get_session(session=session, project=found, session_id=session_id)
        answer = answer_item(
            session=session,
            project=found,
            cal=row,
            member=member,
            item_id=body.item_id,
            label=body.label,
            time_spent_ms=body.time_spent_ms,
            now=now,
        )
        return {"id": answer.id, "item_id": answer.item_id}
