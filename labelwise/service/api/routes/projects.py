"""``/projects``: the caller's projects, creating one, a project's summary."""

from __future__ import annotations

from fastapi import APIRouter, status

from labelwise.service.api.deps import (
    AdminOrLead,
    CurrentMember,
    ProjectDep,
    SessionDep,
)
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import ProjectCreate, ProjectPublic, ProjectSummary
from labelwise.service.store.members import (
    create_owned_project,
    list_visible_projects,
)
from labelwise.service.store.projects import project_summary

__all__ = ["router"]

router = APIRouter(tags=["projects"], responses=error_responses(401))


@router.get("/projects")
def list_projects(session: SessionDep, member: CurrentMember) -> list[ProjectPublic]:
    """The caller's projects (every project for an admin), by name."""
    projects = list_visible_projects(session=session, member=member)
    return [ProjectPublic.model_validate(project) for project in projects]


@router.post(
    "/projects",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 403, 409, 422),
)
def create_project(
    body: ProjectCreate, session: SessionDep, member: AdminOrLead
) -> ProjectPublic:
    """Create a project (admin, lead); its creator becomes its first member."""
    project = create_owned_project(session=session, member=member, **body.model_dump())
    return ProjectPublic.model_validate(project)


@router.get("/projects/{project}", responses=error_responses(404))
def read_project(session: SessionDep, project: ProjectDep) -> ProjectSummary:
    """A project's counts: items by role, labeled pool, labels and rounds."""
    return ProjectSummary.model_validate(
        project_summary(session=session, project=project)
    )
