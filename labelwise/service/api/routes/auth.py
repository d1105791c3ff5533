"""Authentication: ``/me`` is the caller whose token is in the Authorization header."""

from __future__ import annotations

from fastapi import APIRouter

from labelwise.service.api.deps import CurrentMember, SessionDep
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import MemberPublic, MePublic
from labelwise.service.store.members import list_visible_projects

__all__ = ["router"]

router = APIRouter(tags=["me"], responses=error_responses(401))


@router.get("/me")
def read_me(session: SessionDep, member: CurrentMember) -> MePublic:
    """The caller: name, role, and the projects it can see."""
    projects = list_visible_projects(session=session, member=member)
    return MePublic.model_validate(
        {
            **MemberPublic.model_validate(member).model_dump(),
            "projects": [project.name for project in projects],
        }
    )
