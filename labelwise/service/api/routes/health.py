"""``/health``: is the service up and does its database answer (no auth)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import labelwise
from labelwise.service.api.deps import SessionDep
from labelwise.service.api.schemas import HealthPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health")
def health(session: SessionDep) -> HealthPublic:
    """Liveness and database check; needs no token."""
    session.execute(text("SELECT 1"))
    dialect = session.get_bind().dialect.name
    return HealthPublic(
        status="ok",
        version=labelwise.__version__,
        database="postgresql" if dialect == "postgresql" else "sqlite",
    )
