"""The training worker: runs queued training jobs beside the API.

``labelwise serve`` runs it in a child process by default (``labelwise worker``),
so that fitting a model never holds the serving process's GIL; it can also run
as a thread of each server process (``--train-worker thread``) or on its own
machine (``labelwise worker``).

Every ``poll_seconds`` (or at once after :meth:`TrainingWorker.wake`) it
queues "auto" jobs for projects past their label-count trigger, then claims
and runs queued jobs until none is left. Claims are conditional UPDATEs
(:func:`~labelwise.service.loop.jobs.claim_job`), so any number of server
processes can run a worker against one database. The API only inserts job
rows and returns 202: it never waits for training.
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.orm import Session, sessionmaker

from labelwise.service.loop.jobs import (
    check_retrain_triggers,
    has_queued_work,
    projects_due,
    run_next_job,
    worker_name,
)
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.schema import utcnow

__all__ = ["TrainingWorker"]

logger = logging.getLogger("labelwise.training")


class TrainingWorker:
    """Runs training jobs in a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        retrain_every: int,
        poll_seconds: float = 2.0,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.factory = factory
        self.retrain_every = retrain_every
        self.poll_seconds = poll_seconds
        self.data_dir = data_dir
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, name="labelwise-training", daemon=True
        )
        self._thread.start()

    def run_forever(self) -> None:
        """Poll and run jobs in this thread until :meth:`stop` (from a signal)."""
        self._loop()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to end after its current job, and wait up to ``timeout``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> int:
        """Check the triggers, then run queued jobs until none is left; how many ran.

        An idle poll only reads (no write lock on SQLite): the write
        transactions start when a trigger fires or a job waits.
        """
        with read_only(self.factory) as session:
            due = projects_due(session=session, default_every=self.retrain_every)
            waiting = has_queued_work(session=session, now=utcnow())
        if due:
            with transaction(self.factory) as session:
                check_retrain_triggers(
                    session=session, default_every=self.retrain_every
                )
        elif not waiting:
            return 0
        ran = 0
        name = worker_name()
        while not self._stop.is_set():
            job = run_next_job(self.factory, worker=name, data_dir=self.data_dir)
            if job is None:
                break
            ran += 1
            logger.info("training job %s: %s", job.id, job.status)
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep the worker alive; the next poll retries
                logger.exception("training worker: poll failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
