"""``/members`` (admins) and ``/projects/{project}/members`` (admins, leads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from labelwise.service.api.deps import AdminMember, LeadProject, SessionDep
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import (
    MemberCreate,
    MemberCreated,
    MemberPublic,
    MemberUpdate,
    ProjectMemberAdd,
    ProjectMemberPublic,
)
from labelwise.service.store.members import (
    create_member as store_create_member,
)
from labelwise.service.store.members import (
    join_project,
    list_members,
    project_members,
)
from labelwise.service.store.members import (
    update_member as store_update_member,
)

__all__ = ["router"]

router = APIRouter(tags=["members"], responses=error_responses(401, 403))

MemberName = Annotated[str, Path(description="The member's name.", max_length=200)]


@router.get("/members")
def read_members(session: SessionDep, _admin: AdminMember) -> list[MemberPublic]:
    """Every member, by name (admin)."""
    return [MemberPublic.model_validate(m) for m in list_members(session=session)]


@router.post(
    "/members",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 404, 409, 422),
)
def create_member(
    body: MemberCreate, session: SessionDep, _admin: AdminMember
) -> MemberCreated:
    """Create a member (admin); the reply holds its password and token, once."""
    member, password, token = store_create_member(
        session=session, name=body.name, role=body.role, project=body.project
    )
    return MemberCreated.model_validate(
        {
            **MemberPublic.model_validate(member).model_dump(),
            "password": password,
            "token": token,
        }
    )


@router.patch("/members/{name}", responses=error_responses(400, 404, 409, 422))
def update_member(
    name: MemberName, body: MemberUpdate, session: SessionDep, _admin: AdminMember
) -> MemberPublic:
    """Change a member's role or deactivate it (admin)."""
    member = store_update_member(
        session=session, member=name, role=body.role, active=body.active
    )
    return MemberPublic.model_validate(member)


@router.get("/projects/{project}/members", responses=error_responses(404))
def read_project_members(
    session: SessionDep, project: LeadProject
) -> list[MemberPublic]:
    """The members of a project (admin, the project's leads)."""
    members = project_members(session=session, project=project)
    return [MemberPublic.model_validate(m) for m in members]


@router.post(
    "/projects/{project}/members",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The member already belonged to the project."},
        **error_responses(404, 422),
    },
)
def add_project_member(
    body: ProjectMemberAdd,
    session: SessionDep,
    project: LeadProject,
    response: Response,
) -> ProjectMemberPublic:
    """Add an existing member to a project (admin, the project's leads)."""
    member, added = join_project(session=session, project=project, name=body.name)
    if not added:
        response.status_code = status.HTTP_200_OK
    return ProjectMemberPublic.model_validate(
        {
            "project": project.name,
            "name": member.name,
            "role": member.role,
            "added": added,
        }
    )
