"""A small two-blob tabular project, seeded straight into the store."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import insert, select

from labelwise.service.store.engine import transaction
from labelwise.service.store.projects import create_project
from labelwise.service.store.schema import Annotation, FinalLabel, Item, Project

LABELS = ["a", "b"]


def blobs(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``n`` points: class a around (0, 0), class b around (3, 3)."""
    rng = np.random.default_rng(seed)
    y = np.array(["a", "b"] * (n // 2) + ["a"] * (n % 2))
    centre = np.where(y[:, None] == "a", 0.0, 3.0)
    return centre + rng.normal(size=(n, 2)), list(y)


def add_items(session, project, role, X, labels, *, prefix, labeled=None):
    """Items of ``role`` at points ``X``; the first ``labeled`` get final labels."""
    labeled = len(X) if labeled is None else labeled
    rows = [
        {
            "project_id": project.id,
            "external_id": f"{prefix}{i}",
            "role": role,
            "fields": {"x": float(x), "y": float(y)},
            "content_hash": hashlib.sha256(f"{prefix}{i}".encode()).hexdigest(),
            "source": {},
        }
        for i, (x, y) in enumerate(X)
    ]
    ids = session.scalars(insert(Item).returning(Item.id), rows).all()
    for item_id, label in list(zip(ids, labels, strict=True))[:labeled]:
        text = f'"{label}"'
        session.execute(
            insert(Annotation).values(
                project_id=project.id, item_id=item_id, label=text, source="import"
            )
        )
        session.execute(
            insert(FinalLabel).values(
                item_id=item_id, project_id=project.id, label=text, method="seed"
            )
        )
    return list(ids)


@pytest.fixture
def seeded(session_factory):
    """Project "t": 80 pool items (30 labeled), 20 labeled validation items."""
    X, y = blobs(80, seed=1)
    Xv, yv = blobs(20, seed=2)
    with transaction(session_factory) as session:
        project = create_project(
            session=session, name="t", labels=LABELS, fields=["x", "y"]
        )
        add_items(session, project, "pool", X, y, prefix="p", labeled=30)
        add_items(session, project, "validation", Xv, yv, prefix="v")
    return session_factory


def project_of(session, name: str = "t") -> Project:
    return session.scalar(select(Project).where(Project.name == name))
