"""``create_app(settings)``: the FastAPI application; nothing is built at import.

The app's lifespan owns the engine: it builds it from the settings, applies
the migrations, puts the session factory on ``app.state`` and disposes of the
engine on shutdown. Routes reach both through :mod:`labelwise.service.api.deps`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

import labelwise
from labelwise.service.api.errors import install_error_handlers
from labelwise.service.api.routes import routers
from labelwise.service.api.security import install_security
from labelwise.service.settings import Settings, load_settings

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"
logger = logging.getLogger("labelwise.api")

_DESCRIPTION = (
    "The labelwise REST API. Authenticate with `Authorization: Bearer TOKEN`; "
    "every error has the body "
    '`{"error": {"code", "message", "hint", "details"}}`. See docs/api.md.'
)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app for ``settings`` (default: from ``LABELWISE_*``)."""
    settings = settings if settings is not None else load_settings()
    settings.check_production()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from labelwise.service.store.engine import make_engine, make_sessionmaker
        from labelwise.service.store.migrate import upgrade

        url = settings.sqlalchemy_url()
        # PostgreSQL: a pooled connection for every write slot and some reads,
        # so that a burst of writers never opens and closes connections.
        pool = {} if url.startswith("sqlite") else {"pool_size": WRITE_SLOTS + 4}
        engine = make_engine(url, **pool)
        try:
            upgrade(engine)
            app.state.engine = engine
            app.state.session_factory = make_sessionmaker(engine)
            app.state.training_worker = _start_training_worker(app, settings)
            logger.info("labelwise API ready on %s", engine.dialect.name)
            yield
        finally:
            if getattr(app.state, "training_worker", None) is not None:
                app.state.training_worker.stop()
            engine.dispose()

    app = FastAPI(
        title="labelwise",
        version=labelwise.__version__,
        description=_DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    _limit_concurrent_writes(app, settings)
    install_error_handlers(app)
    for router in routers():
        app.include_router(router, prefix=API_PREFIX)
    from labelwise.service.ui.app import mount_ui

    mount_ui(app, settings)
    install_security(app, settings)  # outermost: headers and limits on every reply
    return app


def _start_training_worker(app: FastAPI, settings: Settings) -> Any:
    """The background training worker of this process (None when switched off)."""
    if not settings.train_worker:
        return None
    from labelwise.service.loop.worker import TrainingWorker

    worker = TrainingWorker(
        app.state.session_factory,
        retrain_every=settings.retrain_every,
        poll_seconds=settings.train_poll_seconds,
        data_dir=settings.resolved_data_dir(),
    )
    worker.start()
    return worker


#: Write requests allowed in flight at once (see :func:`_limit_concurrent_writes`).
WRITE_SLOTS = 8
#: The same on SQLite, which runs one write transaction at a time anyway.
SQLITE_WRITE_SLOTS = 1
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _limit_concurrent_writes(app: FastAPI, settings: Settings) -> None:
    """Admit at most WRITE_SLOTS write requests at a time; the rest wait their turn.

    A write request holds its transaction (and on SQLite the write lock, on
    PostgreSQL row locks) from its first query until its session dependency
    commits, across several hops onto the shared worker threads (its sync
    dependencies, the endpoint, the commit). With more concurrent writers
    than threads, every thread can end up waiting for a connection or a lock
    whose holder is waiting for a thread for its next step: the server stalls
    until a 30 s timeout (measured with 50 annotators in bench/load.py).
    Queueing the writers here, before they take a thread, keeps threads free.

    On SQLite one slot: writers queue here in order instead of inside
    SQLite, whose busy handler polls the write lock with sleeps of up to
    100 ms (10 annotators: p99 1.3 s with 8 slots). Across worker
    processes the busy timeout still arbitrates. A plain ASGI middleware:
    Starlette's BaseHTTPMiddleware (``@app.middleware``) costs about 0.2 ms
    of CPU per request.
    """
    sqlite = settings.sqlalchemy_url().startswith("sqlite")
    slots = SQLITE_WRITE_SLOTS if sqlite else WRITE_SLOTS
    app.add_middleware(WriteAdmission, slots=slots)


class WriteAdmission:
    """ASGI middleware: at most ``slots`` non-read HTTP requests run at once."""

    def __init__(self, app: ASGIApp, slots: int) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(slots)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READ_METHODS:
            await self.app(scope, receive, send)
            return
        async with self.slots:
            await self.app(scope, receive, send)
