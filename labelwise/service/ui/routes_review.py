"""The reviewer page: disputed items with every answer side by side, and resolve.

- ``GET /projects/{project}/review``: the disputed items (reviewers, leads,
  admins of the project; others get 403, non-members 404);
- ``POST /projects/{project}/review/{item_id}``: the chosen label and a note
  (CSRF checked) settle the item (``resolve_item``: final label
  ``adjudicated``, raw votes kept); redirects back with a flash message.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from labelwise.exceptions import InvalidInputError, PermissionDenied
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.members import get_visible_project
from labelwise.service.store.review import count_disputed, disputed_items, resolve_item
from labelwise.service.store.schema import Item, Member, Project
from labelwise.service.ui.auth import UIMember, require_csrf
from labelwise.service.ui.templating import render

__all__ = [
    "REVIEW_ROLES",
    "add_flash",
    "pop_flashes",
    "router",
    "ui_project",
    "ui_session_factory",
]

router = APIRouter()

#: Roles that may open the reviewer page.
REVIEW_ROLES = ("reviewer", "lead", "admin")
_FLASH = "flash"
_PAGE = 50

ProjectName = Annotated[str, Path(min_length=1, max_length=200)]


def ui_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def ui_project(
    session: Session, member: Member, name: str, roles: tuple[str, ...], page: str
) -> Project:
    """The project ``name`` if ``member`` belongs to it (404) and has a role (403)."""
    project = get_visible_project(session=session, member=member, name=name)
    if member.role not in roles:
        raise PermissionDenied(
            f"The {page} of project {project.name!r} is for the roles "
            f"{', '.join(roles)}. Member {member.name!r} has the role "
            f"{member.role!r}.",
            hint="Ask an admin to change your role if you need this page.",
        )
    return project


def add_flash(request: Request, text: str, kind: str = "ok") -> None:
    """Queue a message for the next page this session sees."""
    messages = request.session.get(_FLASH)
    if not isinstance(messages, list):
        messages = []
    messages.append({"kind": kind, "text": text})
    request.session[_FLASH] = messages[-5:]


def pop_flashes(request: Request) -> list[dict[str, Any]]:
    """The queued messages, removed from the session."""
    messages = request.session.pop(_FLASH, None)
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _review_url(project: str) -> str:
    from urllib.parse import quote

    return f"/projects/{quote(project, safe='')}/review"


@router.get("/projects/{project}/review")
def review_page(
    request: Request,
    member: UIMember,
    project: ProjectName,
    cursor: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The disputed items of ``project``, oldest first."""
    with read_only(ui_session_factory(request)) as session:
        found = ui_project(session, member, project, REVIEW_ROLES, "review page")
        disputes, following = disputed_items(
            session=session, project=found, limit=_PAGE, cursor=cursor
        )
        total = count_disputed(session=session, project=found)
        labels = [str(label) for label in found.labels]
        context = {
            "project": found,
            "labels": labels,
            "multi_label": found.multi_label,
            "text_field": found.text_field,
            "disputes": disputes,
            "total": total,
            "next_cursor": following,
            "flashes": pop_flashes(request),
        }
    return render(request, "review.html", context, member=member)


def _form_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _multi(values: list[str]) -> list[str]:
    """Labels posted for a multi-label item: each value a JSON list of labels."""
    chosen: set[str] = set()
    for value in values:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise InvalidInputError(
                "A multi-label resolution posts each label as a JSON list such as "
                f'["a", "b"]. Got {value!r} instead.',
                hint="Press one of the label buttons of the review page.",
            )
        chosen.update(parsed)
    return sorted(chosen)


def _resolve(
    request: Request,
    member: Member,
    project: str,
    item_id: int,
    label: Any,
    note: str | None,
) -> tuple[str, str]:
    """Settle the item in one transaction: its external id and the label shown."""
    with transaction(ui_session_factory(request)) as session:
        found = ui_project(session, member, project, REVIEW_ROLES, "review page")
        if found.multi_label:
            label = _multi(label)
        else:
            if len(label) != 1:
                raise InvalidInputError(
                    f"Resolving an item needs exactly one label of project "
                    f"{found.name!r}. Got {len(label)}.",
                    hint="Press one of the label buttons.",
                )
            label = label[0]
        final = resolve_item(
            session=session,
            project=found,
            item_id=item_id,
            label=label,
            reviewer=member,
            note=note,
        )
        item = session.get(Item, final.item_id)
        external_id = item.external_id if item is not None else str(item_id)
        shown = ", ".join(label) if isinstance(label, list) else str(label)
    return external_id, shown


@router.post("/projects/{project}/review/{item_id}")
async def resolve(
    request: Request,
    member: UIMember,
    project: ProjectName,
    item_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """Settle ``item_id`` with the posted ``label`` (and ``note``); back to review."""
    async with request.form() as form:
        require_csrf(request, form)
        label: Any = [v for v in form.getlist("label") if isinstance(v, str)]
        note = _form_text(form.get("note"))
    external_id, shown = await run_in_threadpool(
        _resolve, request, member, project, item_id, label, note
    )
    add_flash(request, f"Item {external_id!r} resolved as {shown!r}.")
    return RedirectResponse(_review_url(project), status_code=303)
