"""Calibration sessions: leads create, read and close them; annotators answer blind.

- ``GET /projects/{project}/calibration``: sessions (annotators: the open ones
  with their own progress only);
- ``POST /projects/{project}/calibration``: create from ``item_ids`` /
  ``external_ids`` or a ``rule`` (``most_disputed``, ``most_uncertain``) with a
  ``size`` of 20 to 50 (leads);
- ``GET /projects/{project}/calibration/{session_id}``: the report (leads);
- ``GET …/{session_id}/next`` and ``POST …/{session_id}/answers``: the caller's
  next item and their answer (annotators, reviewers), 204 when done;
- ``POST …/{session_id}/close``: close, optionally publishing a guideline.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from labelwise.service.api.deps import (
    CurrentMember,
    LeadProject,
    NowDep,
    ProjectDep,
    SessionDep,
)
from labelwise.service.api.errors import error_responses
from labelwise.service.store.calibration import (
    answer_item,
    close_session,
    create_session,
    export_quality,
    get_session,
    list_sessions,
    next_item,
    session_report,
)

__all__ = ["CalibrationAnswerCreate", "CalibrationClose", "CalibrationCreate", "router"]

router = APIRouter(tags=["calibration"], responses=error_responses(401, 403, 404))

SessionId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CalibrationCreate(BaseModel):
    """A new session: items by hand (ids or external ids) or by a rule."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    item_ids: list[int] | None = None
    external_ids: list[str] | None = None
    rule: Literal["most_disputed", "most_uncertain"] | None = None
    size: int = Field(default=30, ge=20, le=50)
    seed: int | None = None


class CalibrationAnswerCreate(BaseModel):
    """One blind answer."""

    model_config = ConfigDict(extra="forbid")
    item_id: int = Field(ge=1, le=2**31 - 1)
    label: str | list[str]
    time_spent_ms: int | None = Field(default=None, ge=0, le=86_400_000)


class CalibrationClose(BaseModel):
    """Close a session; ``guideline`` text becomes the next guideline version."""

    model_config = ConfigDict(extra="forbid")
    guideline: str | None = Field(default=None, max_length=200_000)
    note: str | None = Field(default=None, max_length=2000)


@router.get("/projects/{project}/calibration")
def list_calibration(
    session: SessionDep, member: CurrentMember, project: ProjectDep
) -> list[dict[str, Any]]:
    """The project's sessions, newest first (annotators: open ones, own progress)."""
    return list_sessions(session=session, project=project, member=member)


@router.post(
    "/projects/{project}/calibration",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 422),
)
def create_calibration(
    body: CalibrationCreate,
    session: SessionDep,
    member: CurrentMember,
    project: LeadProject,
) -> dict[str, Any]:
    """Create a session of 20 to 50 items (admin, the project's leads)."""
    row = create_session(
        session=session,
        project=project,
        creator=member,
        name=body.name,
        item_ids=body.item_ids,
        external_ids=body.external_ids,
        rule=body.rule,
        size=body.size,
        rng=body.seed,
    )
    return session_report(session=session, project=project, cal=row)


@router.get("/projects/{project}/calibration/{session_id}")
def read_calibration(
    session_id: SessionId, session: SessionDep, project: LeadProject
) -> dict[str, Any]:
    """The session's report: agreement, participation, the items that split people."""
    row = get_session(session=session, project=project, session_id=session_id)
    return session_report(session=session, project=project, cal=row)


@router.get(
    "/projects/{project}/calibration/{session_id}/next",
    responses={204: {"description": "The caller answered every item."}},
)
def next_calibration_item(
    session_id: SessionId,
    session: SessionDep,
    member: CurrentMember,
    project: ProjectDep,
) -> Any:
    """The caller's next unanswered item (the item only, never others' answers)."""
    row = get_session(session=session, project=project, session_id=session_id)
    found = next_item(session=session, cal=row, member=member)
    if found is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return found


@router.post(
    "/projects/{project}/calibration/{session_id}/answers",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409, 422),
)
def answer_calibration_item(
    body: CalibrationAnswerCreate,
    session_id: SessionId,
    session: SessionDep,
    member: CurrentMember,
    project: ProjectDep,
    now: NowDep,
) -> dict[str, Any]:
    """Record the caller's answer (once per item); it never becomes a final label."""
    row = get_session(session=session, project=project, session_id=session_id)
    answer = answer_item(
        session=session,
        project=project,
        cal=row,
        member=member,
        item_id=body.item_id,
        label=body.label,
        time_spent_ms=body.time_spent_ms,
        now=now,
    )
    return {"id": answer.id, "session_id": row.id, "item_id": answer.item_id}


@router.post(
    "/projects/{project}/calibration/{session_id}/close",
    responses=error_responses(400, 409, 422),
)
def close_calibration(
    body: CalibrationClose,
    session_id: SessionId,
    session: SessionDep,
    member: CurrentMember,
    project: LeadProject,
    now: NowDep,
) -> dict[str, Any]:
    """Close the session; optional guideline text is published as a new version."""
    row = get_session(session=session, project=project, session_id=session_id)
    close_session(
        session=session,
        project=project,
        cal=row,
        member=member,
        guideline=body.guideline,
        note=body.note,
        now=now,
    )
    return session_report(session=session, project=project, cal=row)


@router.get("/projects/{project}/quality-export")
def quality_export(session: SessionDep, project: LeadProject) -> dict[str, Any]:
    """Every guideline version and calibration session with its answers (leads)."""
    return export_quality(session=session, project=project)
