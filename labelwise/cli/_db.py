"""The ``--db`` option and opening the store (migrated to the newest schema)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["DbOption", "open_store"]

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="LABELWISE_DATABASE_URL",
        help="Database URL (sqlite:///file.db or postgresql://user@host/db); "
        "default: ./labelwise.db.",
        show_default=False,
    ),
]


def open_store(db: str | None) -> tuple[Engine, sessionmaker[Session]]:
    """Engine and session factory for ``db``, with every migration applied."""
    from labelwise.service.store.engine import make_engine, make_sessionmaker
    from labelwise.service.store.migrate import upgrade

    engine = make_engine(db)
    upgrade(engine)
    return engine, make_sessionmaker(engine)
