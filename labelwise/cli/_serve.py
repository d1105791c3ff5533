"""``labelwise serve``: run the API with uvicorn (migrating the database first)."""

from __future__ import annotations

import os
import subprocess
import sys
from enum import StrEnum
from typing import Annotated

import typer

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors, stderr

__all__ = ["serve_command"]

_FACTORY = "labelwise.service.api.app:create_app"


class TrainWorker(StrEnum):
    """Where ``labelwise serve`` runs retraining (``--train-worker``)."""

    process = "process"
    thread = "thread"
    off = "off"


def _init_admin(db: str | None) -> tuple[str, str, str] | None:
    """Migrate ``db`` and create the first admin if there is none."""
    from labelwise.service.store.engine import transaction
    from labelwise.service.store.members import ensure_admin

    engine, factory = open_store(db)
    try:
        with transaction(factory) as session:
            created = ensure_admin(session=session)
            if created is None:
                return None
            member, password, token = created
            return member.name, password, token
    finally:
        engine.dispose()


def serve_command(
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
    db: DbOption = None,
    init_admin: Annotated[
        bool,
        typer.Option(
            "--init-admin",
            help="If the database has no admin, create 'admin' with a random "
            "password and token and print them once.",
        ),
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Worker processes.")
    ] = 1,
    train_worker: Annotated[
        TrainWorker | None,
        typer.Option(
            "--train-worker",
            help="Where retraining runs: 'process' (one child process, "
            "`labelwise worker --nice 10`; the default), 'thread' (a thread in "
            "each server process) or 'off' (run `labelwise worker` elsewhere). "
            "Default: 'process', or 'off' when LABELWISE_TRAIN_WORKER=0.",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log one line per request (uvicorn's access log). Off saves "
            "about 7 % of the server's CPU under load; use it when a proxy in "
            "front logs the requests.",
        ),
    ] = True,
) -> None:
    """Serve the REST API (/api/v1, docs at /api/v1/docs) with uvicorn.

    Outside development (LABELWISE_DEV=1) it needs a real LABELWISE_SECRET_KEY.
    Retraining runs in a child process by default, so that fitting a model
    never stalls the annotators' requests.
    """
    import uvicorn

    from labelwise.service.settings import load_settings

    created = None
    with handle_errors():
        overrides = {"database_url": db} if db else {}
        settings = load_settings(**overrides)
        settings.check_production()
        mode = _train_mode(train_worker, default_on=settings.train_worker)
        settings = settings.model_copy(update={"train_worker": mode == "thread"})
        if init_admin:
            created = _init_admin(settings.database_url)
        else:
            open_store(settings.database_url)[0].dispose()
    if init_admin:
        if created is None:
            stderr.print("An admin already exists; --init-admin created nobody.")
        else:
            name, password, token = created
            typer.echo(f"Created admin {name!r}; shown once, stored only hashed:")
            typer.echo(f"password: {password}")
            typer.echo(f"token: {token}")
    sys.stdout.flush()
    stderr.print(
        f"labelwise API on http://{host}:{port}/api/v1 "
        f"(docs: http://{host}:{port}/api/v1/docs)"
    )
    trainer = _start_trainer(settings.database_url) if mode == "process" else None
    try:
        if workers == 1:
            from labelwise.service.api.app import create_app

            uvicorn.run(
                create_app(settings), host=host, port=port, access_log=access_log
            )
            return
        # Worker processes build their own app from the environment.
        if db:
            os.environ["LABELWISE_DATABASE_URL"] = db
        os.environ["LABELWISE_TRAIN_WORKER"] = "1" if mode == "thread" else "0"
        uvicorn.run(
            _FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
        )
    finally:
        if trainer is not None:
            _stop_trainer(trainer)


#: Seconds the trainer child gets to finish its job after SIGTERM.
TRAINER_STOP_SECONDS = 30.0


def _train_mode(given: TrainWorker | None, *, default_on: bool) -> TrainWorker:
    """The option's choice, else the process form (or off by the settings)."""
    if given is not None:
        return given
    return TrainWorker.process if default_on else TrainWorker.off


def _start_trainer(database_url: str | None) -> subprocess.Popen[bytes]:
    """``labelwise worker --nice 10`` as a child process on the same database."""
    env = dict(os.environ)
    if database_url:
        env["LABELWISE_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "labelwise", "worker", "--nice", "10"]
    command += ["--parent-pid", str(os.getpid())]
    return subprocess.Popen(command, env=env)


def _stop_trainer(trainer: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then wait for the current job; kill it past the grace period.

    A killed job is not lost: its claim expires and the next worker reruns it.
    """
    if trainer.poll() is not None:
        return
    trainer.terminate()
    try:
        trainer.wait(TRAINER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        trainer.kill()
        trainer.wait()
