"""``/projects/{project}/annotations``: every answer, keyset paged (admins, leads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from labelwise.service.api.deps import LeadProject, SessionDep
from labelwise.service.api.errors import error_responses
from labelwise.service.api.pages import annotations_page
from labelwise.service.api.schemas import AnnotationRow, Page

__all__ = ["router"]

router = APIRouter(tags=["annotations"], responses=error_responses(401, 403, 404))


@router.get("/projects/{project}/annotations", responses=error_responses(400, 422))
def list_annotations(
    session: SessionDep,
    project: LeadProject,
    cursor: Annotated[
        str | None, Query(description="The 'next' of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> Page[AnnotationRow]:
    """A page of the project's annotations in id order (admin, the project's leads)."""
    rows, after = annotations_page(
        session=session, project=project, cursor=cursor, limit=limit
    )
    return Page[AnnotationRow](
        items=[AnnotationRow.model_validate(row) for row in rows], next=after
    )
