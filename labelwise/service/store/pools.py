"""External pools: Parquet files registered as a project's pool (issue #8).

A project has at most one pool source. While it has one, rounds stream its
files instead of reading pool items from the database; only selected items
are materialised as ``items`` rows (:func:`materialise`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from labelwise.exceptions import ConflictError, NotFoundError
from labelwise.service.store.schema import Item, PoolSource, Project

__all__ = [
    "add_pool_source",
    "get_pool_source",
    "list_pool_sources",
    "materialise",
    "open_pool",
    "remove_pool_source",
]


def open_pool(source: PoolSource) -> Any:
    """The :class:`labelwise.scale.ParquetPool` of ``source`` (files resolved now)."""
    from labelwise.scale import ParquetPool

    return ParquetPool.open(
        source.path,
        id_column=source.id_column,
        feature_columns=tuple(source.feature_columns or ()),
        text_column=source.text_column,
    )


def add_pool_source(
    *,
    session: Session,
    project: Project,
    path: str,
    id_column: str = "id",
    feature_columns: list[str] | None = None,
    text_column: str | None = None,
    name: str = "pool",
) -> PoolSource:
    """Register Parquet files as the project's pool, after checking their columns.

    Feature columns default to the project's fields and the text column to
    its text field. Nothing is copied: rounds read the files.

    Raises
    ------
    ConflictError
        If the project already has a pool source.
    InvalidInputError
        If no file matches or a file lacks a column.
    """
    existing = get_pool_source(session=session, project=project)
    if existing is not None:
        raise ConflictError(
            f"Project {project.name!r} already reads its pool from {existing.path!r}.",
            hint=f"Run `labelwise pool remove {project.name}` first.",
        )
    if text_column is None and not feature_columns:
        text_column = project.text_field
    features = list(feature_columns or ([] if text_column else project.fields))
    source = PoolSource(
        project_id=project.id,
        name=name,
        path=str(path),
        id_column=id_column,
        feature_columns=features,
        text_column=text_column,
    )
    pool = open_pool(source)  # validates files and columns before writing
    source.n_files = len(pool.paths)
    source.n_rows = pool.n_rows
    session.add(source)
    session.flush()
    return source


def get_pool_source(*, session: Session, project: Project) -> PoolSource | None:
    """The project's pool source, or None when its pool lives in the database."""
    return session.scalar(select(PoolSource).where(PoolSource.project_id == project.id))


def list_pool_sources(*, session: Session, project: Project) -> list[PoolSource]:
    """The project's pool sources (zero or one)."""
    return list(
        session.scalars(
            select(PoolSource)
            .where(PoolSource.project_id == project.id)
            .order_by(PoolSource.id)
        )
    )


def remove_pool_source(*, session: Session, project: Project) -> PoolSource:
    """Unregister the project's pool source; materialised items stay.

    Raises
    ------
    NotFoundError
        If the project has none.
    """
    source = get_pool_source(session=session, project=project)
    if source is None:
        raise NotFoundError(
            f"Project {project.name!r} has no external pool.",
            hint=f"Add one with `labelwise pool add {project.name} PATH`.",
        )
    session.delete(source)
    session.flush()
    return source


def materialise(
    *,
    session: Session,
    project: Project,
    source: PoolSource,
    positions: np.ndarray[Any, Any],
) -> list[int]:
    """Item ids of the pool rows at ``positions``, inserting the missing items.

    Reads only those rows back from the files; an item already in the store
    (same external id) is reused.
    """
    from labelwise.service.io._normalize import content_hash

    pool = open_pool(source)
    rows = pool.take(np.asarray(positions, dtype=np.int64))
    external = [str(r[source.id_column]) for r in rows]
    known = dict(
        session.execute(
            select(Item.external_id, Item.id).where(
                Item.project_id == project.id, Item.external_id.in_(external)
            )
        ).all()
    )
    new = []
    for position, row, ext in zip(positions.tolist(), rows, external, strict=True):
        if ext in known:
            continue
        fields = {k: v for k, v in row.items() if k != source.id_column}
        new.append(
            {
                "project_id": project.id,
                "external_id": ext,
                "role": "pool",
                "fields": fields,
                "content_hash": content_hash(fields),
                "source": {"format": "parquet", "pool": source.path, "row": position},
            }
        )
    if new:
        session.execute(insert(Item), new)
        known.update(
            session.execute(
                select(Item.external_id, Item.id).where(
                    Item.project_id == project.id,
                    Item.external_id.in_([n["external_id"] for n in new]),
                )
            ).all()
        )
    return [int(known[ext]) for ext in external]
