"""``labelwise worker``: run training jobs in this process (no API)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from labelwise.cli._db import DbOption, open_store
from labelwise.cli._errors import handle_errors, stderr

if TYPE_CHECKING:
    from labelwise.service.loop.worker import TrainingWorker

__all__ = ["worker_command"]

#: Seconds between checks that the parent process still lives.
PARENT_CHECK_SECONDS = 1.0


def _stop_with_parent(worker: TrainingWorker, parent_pid: int) -> None:
    """Stop ``worker`` once this process is no longer ``parent_pid``'s child."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        worker.stop(timeout=0)

    threading.Thread(target=watch, name="labelwise-parent-watch", daemon=True).start()


def worker_command(
    db: DbOption = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Check the retrain triggers, run every queued job, then exit.",
        ),
    ] = False,
    nice: Annotated[
        int,
        typer.Option(
            "--nice",
            min=0,
            max=19,
            help="Lower this process's CPU priority by this much (Unix), so that "
            "training yields the CPU to the API on a shared machine.",
        ),
    ] = 0,
    parent_pid: Annotated[
        int | None,
        typer.Option(
            "--parent-pid",
            hidden=True,
            help="Stop (after the current job) when this process is gone: set by "
            "`labelwise serve` for its child, so a killed server leaves no trainer.",
        ),
    ] = None,
) -> None:
    """Run the training worker: queued and triggered retraining, until stopped.

    'labelwise serve' starts one as a child process ('--train-worker process',
    the default); run it yourself for a trainer on another machine, with the
    API started with '--train-worker off'. Any number of workers may share one
    database: each job is claimed by exactly one.
    """
    from labelwise.service.loop.worker import TrainingWorker
    from labelwise.service.settings import load_settings

    with handle_errors():
        settings = load_settings(**({"database_url": db} if db else {}))
        engine, factory = open_store(settings.database_url)
    if nice:
        os.nice(nice)
    worker = TrainingWorker(
        factory,
        retrain_every=settings.retrain_every,
        poll_seconds=settings.train_poll_seconds,
        data_dir=settings.resolved_data_dir(),
    )
    try:
        if once:
            with handle_errors():
                ran = worker.run_once()
            typer.echo(f"Ran {ran} training job{'s' if ran != 1 else ''}.")
            return
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

        def _stop(signum: int, frame: FrameType | None) -> None:
            worker.stop(timeout=0)

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if parent_pid is not None:
            _stop_with_parent(worker, parent_pid)
        stderr.print(
            f"labelwise training worker on {engine.dialect.name} "
            f"(poll every {settings.train_poll_seconds:g} s; Ctrl-C stops it "
            "after the current job)"
        )
        worker.run_forever()
    finally:
        engine.dispose()
