"""Engines and sessions: SQLite (WAL, foreign keys, BEGIN IMMEDIATE) or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from labelwise.exceptions import ConfigError

__all__ = [
    "DEFAULT_SQLITE_FILE",
    "is_sqlite",
    "make_engine",
    "make_sessionmaker",
    "normalize_url",
    "read_only",
    "transaction",
]

DEFAULT_SQLITE_FILE = "labelwise.db"
READ_ONLY = "labelwise_read_only"


def normalize_url(url: str | None) -> str:
    """The SQLAlchemy URL for ``url``.

    ``None`` gives a SQLite file ``labelwise.db`` in the working directory; a
    plain ``postgresql://user@host/db`` (or ``postgres://``) URL uses psycopg 3;
    a bare path ending in ``.db``/``.sqlite`` is a SQLite file.
    """
    if not url:
        return f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(
            f"Database URL {url!r} is not a valid URL: {exc}.",
            hint="Use sqlite:///path/to/file.db or postgresql://user@host/dbname.",
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"Database URL {url!r} names the backend "
            f"{parsed.get_backend_name()!r}; labelwise supports sqlite and postgresql.",
            hint="Use sqlite:///path/to/file.db or postgresql://user@host/dbname.",
        )
    return url


def is_sqlite(engine: Engine) -> bool:
    """True for a SQLite engine."""
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for write transactions.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's
    ``begin`` emits ``BEGIN IMMEDIATE``: a transaction takes the write lock
    when it starts, so two writers never deadlock upgrading a read lock, and
    a second writer waits (busy timeout) instead of failing half-way. A
    connection with the execution option ``labelwise_read_only=True`` (see
    :func:`read_only`) begins a plain deferred transaction, so readers never
    wait for the writer (WAL).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (see :func:`normalize_url`), configured for labelwise."""
    resolved = normalize_url(url)
    if resolved.startswith("sqlite"):
        path = make_url(resolved).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(resolved, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(resolved, **kwargs)
    if "pool_pre_ping" not in kwargs:  # a caller's own choice wins
        _ping_idle_connections(engine)
    return engine


#: A pooled PostgreSQL connection idle for longer than this is pinged first.
IDLE_PING_SECONDS = 5.0
_IDLE_SINCE = "labelwise_idle_since"


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping``, but only for connections idle for IDLE_PING_SECONDS.

    SQLAlchemy's pre-ping sends ``SELECT 1`` at every checkout: one more round
    trip per request. A connection handed back milliseconds ago is alive; one
    that sat in the pool (PostgreSQL restarted, an idle timeout) is checked,
    and a dead one is replaced before the request uses it.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            # The pool discards this connection and checks out another one.
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_only(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads: on SQLite its transaction does not take the write lock."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        yield session
