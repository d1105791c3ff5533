"""Items of a project: count, look up, stream, and the labeled/unlabeled splits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelwise.exceptions import InvalidInputError, NotFoundError
from labelwise.service.store.labels import LabelValue, decode_label
from labelwise.service.store.schema import ITEM_ROLES, FinalLabel, Item, Project

__all__ = [
    "count_items",
    "get_item",
    "iter_items",
    "labeled_items",
    "unlabeled_pool",
]


def _check_role(role: str) -> str:
    if role not in ITEM_ROLES:
        raise InvalidInputError(
            f"An item role must be one of {', '.join(ITEM_ROLES)}. Got {role!r} "
            "instead.",
            hint="Use pool, validation, gold or failure.",
        )
    return role


def count_items(*, session: Session, project: Project, role: str | None = None) -> int:
    """How many items ``project`` has (of ``role``, when given)."""
    query = select(func.count()).select_from(Item).where(Item.project_id == project.id)
    if role is not None:
        query = query.where(Item.role == _check_role(role))
    return int(session.scalar(query) or 0)


def get_item(*, session: Session, project: Project, external_id: str) -> Item:
    """The item of ``project`` with ``external_id``."""
    item = session.scalar(
        select(Item).where(
            Item.project_id == project.id, Item.external_id == external_id
        )
    )
    if item is None:
        total = count_items(session=session, project=project)
        raise NotFoundError(
            f"No item with external id {external_id!r} in project {project.name!r} "
            f"({total} items).",
            hint="Check the id (ids are case-sensitive), or import the item "
            "(`labelwise import`).",
        )
    return item


def iter_items(
    *,
    session: Session,
    project: Project,
    role: str | None = None,
    batch_size: int = 1000,
) -> Iterator[Item]:
    """Stream the items of ``project`` in id order, ``batch_size`` rows per query."""
    if isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInputError(
            f"batch_size must be an int >= 1. Got {batch_size!r} instead.",
            hint="Pass e.g. batch_size=1000.",
        )
    query = select(Item).where(Item.project_id == project.id)
    if role is not None:
        query = query.where(Item.role == _check_role(role))
    last = None
    while True:
        page = query if last is None else query.where(Item.id > last)
        batch = list(session.scalars(page.order_by(Item.id).limit(batch_size)))
        yield from batch
        if len(batch) < batch_size:
            return
        last = batch[-1].id


def unlabeled_pool(
    *, session: Session, project: Project
) -> tuple[list[int], list[dict[str, Any]]]:
    """Ids and fields of the pool items that have no final label, in id order."""
    rows = session.execute(
        select(Item.id, Item.fields)
        .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
        .where(
            Item.project_id == project.id,
            Item.role == "pool",
            FinalLabel.item_id.is_(None),
        )
        .order_by(Item.id)
    )
    ids: list[int] = []
    fields: list[dict[str, Any]] = []
    for item_id, item_fields in rows:
        ids.append(item_id)
        fields.append(item_fields)
    return ids, fields


def labeled_items(
    *,
    session: Session,
    project: Project,
    roles: Iterable[str] = ("pool", "failure"),
) -> tuple[list[int], list[dict[str, Any]], list[LabelValue]]:
    """Ids, fields and decoded final labels of the items of ``roles``, in id order."""
    wanted = [_check_role(role) for role in roles]
    rows = session.execute(
        select(Item.id, Item.fields, FinalLabel.label)
        .join(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id, Item.role.in_(wanted))
        .order_by(Item.id)
    )
    decoded: dict[str, LabelValue] = {}
    ids: list[int] = []
    fields: list[dict[str, Any]] = []
    labels: list[LabelValue] = []
    for item_id, item_fields, text in rows:
        if text not in decoded:
            decoded[text] = decode_label(project, text)
        value = decoded[text]
        ids.append(item_id)
        fields.append(item_fields)
        labels.append(list(value) if isinstance(value, list) else value)
    return ids, fields, labels
