"""``/projects/{project}/items``: a project's items, keyset paged (admins, leads)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from labelwise.service.api.deps import LeadProject, SessionDep
from labelwise.service.api.errors import error_responses
from labelwise.service.api.pages import items_page
from labelwise.service.api.schemas import ItemPublic, Page
from labelwise.service.store.items import get_item

__all__ = ["router"]

router = APIRouter(tags=["items"], responses=error_responses(401, 403, 404))

ItemRole = Literal["pool", "validation", "gold", "failure"]


@router.get("/projects/{project}/items", responses=error_responses(400, 422))
def list_items(
    session: SessionDep,
    project: LeadProject,
    role: Annotated[ItemRole | None, Query(description="Only items of this role.")] = (
        None
    ),
    cursor: Annotated[
        str | None, Query(description="The 'next' of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
) -> Page[ItemPublic]:
    """A page of the project's items in id order (admin, the project's leads)."""
    rows, after = items_page(
        session=session, project=project, role=role, cursor=cursor, limit=limit
    )
    return Page[ItemPublic](
        items=[ItemPublic.model_validate(row) for row in rows], next=after
    )


@router.get("/projects/{project}/items/{external_id:path}")
def read_item(
    session: SessionDep,
    project: LeadProject,
    external_id: Annotated[str, Path(description="The item's external id.")],
) -> ItemPublic:
    """One item by its external id (admin, the project's leads)."""
    item = get_item(session=session, project=project, external_id=external_id)
    return ItemPublic.model_validate(item)
