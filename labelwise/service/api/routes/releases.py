"""``/projects/{project}/releases``: freeze, list, read, diff and roll back releases.

A release is immutable: there is no PUT, PATCH or DELETE. Admins and the
project's leads only. docs/loop.md describes the manifest.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from labelwise.service.api.deps import CurrentMember, LeadProject, SessionDep
from labelwise.service.api.errors import error_responses
from labelwise.service.loop.releases import (
    create_release,
    diff_releases,
    get_release,
    list_releases,
    release_summary,
    rollback_to_release,
)

__all__ = ["ReleaseCreate", "router"]

router = APIRouter(tags=["releases"], responses=error_responses(401, 403, 404))

ReleaseId = Annotated[str, Path(min_length=1, max_length=64)]


class ReleaseCreate(BaseModel):
    """A new release: an optional note."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


@router.get("/projects/{project}/releases")
def read_releases(session: SessionDep, project: LeadProject) -> list[dict[str, Any]]:
    """The project's releases, oldest first."""
    return [
        release_summary(row) for row in list_releases(session=session, project=project)
    ]


@router.post(
    "/projects/{project}/releases",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409, 422),
)
def make_release(
    session: SessionDep, project: LeadProject, body: ReleaseCreate | None = None
) -> dict[str, Any]:
    """Freeze the final labels into a new immutable release; its manifest."""
    row = create_release(
        session=session, project=project, note=None if body is None else body.note
    )
    return dict(row.manifest)


@router.get("/projects/{project}/releases/{release_id}")
def read_release(
    session: SessionDep, project: LeadProject, release_id: ReleaseId
) -> dict[str, Any]:
    """A release's manifest."""
    row = get_release(session=session, project=project, release_id=release_id)
    return dict(row.manifest)


@router.get("/projects/{project}/releases/{release_id}/diff/{other}")
def read_diff(
    session: SessionDep, project: LeadProject, release_id: ReleaseId, other: ReleaseId
) -> dict[str, Any]:
    """Labels added, removed and changed from ``release_id`` to ``other``."""
    return diff_releases(session=session, project=project, a=release_id, b=other)


@router.post(
    "/projects/{project}/releases/{release_id}/rollback",
    responses=error_responses(409),
)
def rollback(
    session: SessionDep,
    project: LeadProject,
    member: CurrentMember,
    release_id: ReleaseId,
) -> dict[str, Any]:
    """Reset the final labels to the release's; every raw annotation is kept."""
    return rollback_to_release(
        session=session, project=project, release_id=release_id, member=member
    )
