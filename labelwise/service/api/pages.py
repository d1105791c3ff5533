"""Keyset-paged reads for the API: items and annotations of a project.

A page is ``limit`` rows in id order after the cursor, plus the cursor of the
next page (``None`` at the end). A cursor is opaque to clients: they pass back
the ``next`` they were given. It never skips or repeats a row while rows are
added, unlike an offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelwise.exceptions import InvalidInputError
from labelwise.service.store.items import count_items
from labelwise.service.store.labels import decode_label_text
from labelwise.service.store.schema import Annotation, Item, Member, Project

__all__ = ["annotations_page", "decode_cursor", "encode_cursor", "items_page"]

_PREFIX = "id:"


def encode_cursor(last_id: int) -> str:
    """The cursor of the page after the row with id ``last_id``."""
    return f"{_PREFIX}{last_id}"


def decode_cursor(cursor: str | None) -> int:
    """The id after which a page starts (0 for the first page)."""
    if cursor is None or cursor == "":
        return 0
    digits = cursor[len(_PREFIX) :] if cursor.startswith(_PREFIX) else ""
    if not digits.isdigit() or len(digits) > 18:
        raise InvalidInputError(
            f"A cursor must be a value the API returned as 'next'. Got {cursor!r} "
            "instead.",
            hint="Leave cursor out for the first page, then pass each page's 'next'.",
        )
    return int(digits)


def _next(rows: Sequence[Any], limit: int, last_id: int) -> str | None:
    return encode_cursor(last_id) if len(rows) > limit else None


def items_page(
    *,
    session: Session,
    project: Project,
    role: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[Item], str | None]:
    """The items of ``project`` (of ``role``) after ``cursor``, and the next cursor."""
    after = decode_cursor(cursor)
    if role is not None:
        count_items(session=session, project=project, role=role)  # checks the role
    query = select(Item).where(Item.project_id == project.id, Item.id > after)
    if role is not None:
        query = query.where(Item.role == role)
    rows = list(session.scalars(query.order_by(Item.id).limit(limit + 1)))
    page = rows[:limit]
    return page, _next(rows, limit, page[-1].id if page else after)


def annotations_page(
    *,
    session: Session,
    project: Project,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    """The annotations of ``project`` after ``cursor`` (by id), and the next cursor."""
    after = decode_cursor(cursor)
    rows = session.execute(
        select(Annotation, Item.external_id, Member.name)
        .join(Item, Item.id == Annotation.item_id)
        .outerjoin(Member, Member.id == Annotation.member_id)
        .where(Annotation.project_id == project.id, Annotation.id > after)
        .order_by(Annotation.id)
        .limit(limit + 1)
    ).all()
    page = [
        {
            "id": annotation.id,
            "item_id": annotation.item_id,
            "external_id": external_id,
            "annotator": annotator,
            "label": decode_label_text(annotation.label),
            "created_at": annotation.created_at,
            "time_spent_ms": annotation.time_spent_ms,
            "reason": annotation.reason,
            "round_id": annotation.round_id,
            "flag": annotation.flag,
        }
        for annotation, external_id, annotator in rows[:limit]
    ]
    return page, _next(rows, limit, page[-1]["id"] if page else after)
