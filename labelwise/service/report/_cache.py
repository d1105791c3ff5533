"""The last report per project, kept while nothing it reads has changed.

A report takes seconds (it trains dozens of small models), so the API and the
dashboard keep the last one per project under a key made of what changes it:
the newest annotation id and the annotation count (answers, reviews, undos,
imports), the newest model version and round ids, and the item count. One
lock per project makes concurrent requests wait for one computation instead
of starting several. Callers run :meth:`ReportCache.get` in a worker thread;
pages that must answer at once use :meth:`ReportCache.latest`, which returns
what is there and refreshes it in a background thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from labelwise.service.report._build import build_report
from labelwise.service.report._plots import Plot, make_plots
from labelwise.service.store.engine import read_only
from labelwise.service.store.schema import Annotation, Item, ModelVersion, Round

__all__ = ["CachedReport", "ReportCache", "report_key"]

logger = logging.getLogger("labelwise.report")


@dataclass(frozen=True)
class CachedReport:
    """A report, the key it was computed under, and its plots once drawn."""

    key: tuple[int, ...]
    report: dict[str, Any]
    plots: tuple[Plot, ...]


def report_key(*, session: Session, project_id: int) -> tuple[int, ...]:
    """What a report of the project depends on, read in three small queries."""
    newest, count = session.execute(
        select(func.max(Annotation.id), func.count()).where(
            Annotation.project_id == project_id
        )
    ).one()
    model = session.scalar(
        select(func.max(ModelVersion.id)).where(ModelVersion.project_id == project_id)
    )
    round_id = session.scalar(
        select(func.max(Round.id)).where(Round.project_id == project_id)
    )
    items = session.scalar(
        select(func.count()).select_from(Item).where(Item.project_id == project_id)
    )
    return (
        int(newest or 0),
        int(count or 0),
        int(model or 0),
        int(round_id or 0),
        int(items or 0),
    )


class ReportCache:
    """The last report of each project, recomputed only when its key changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self._entries: dict[int, CachedReport] = {}
        self._running: set[int] = set()
        self._errors: dict[int, str] = {}

    def _project_lock(self, project_id: int) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(project_id, threading.Lock())

    def peek(self, project_id: int) -> CachedReport | None:
        """The last report of the project, however old; None if never computed."""
        with self._lock:
            return self._entries.get(project_id)

    def get(
        self,
        factory: sessionmaker[Session],
        project_id: int,
        *,
        plots: bool = False,
    ) -> CachedReport:
        """The project's current report (and plots): cached, or computed now."""
        from labelwise.service.store.schema import Project

        with self._project_lock(project_id):
            with read_only(factory) as session:
                key = report_key(session=session, project_id=project_id)
                cached = self.peek(project_id)
                if cached is None or cached.key != key:
                    project = session.get(Project, project_id)
                    assert project is not None  # the caller resolved it
                    cached = CachedReport(
                        key, build_report(session=session, project=project), ()
                    )
            if plots and not cached.plots:
                cached = CachedReport(
                    cached.key, cached.report, tuple(make_plots(cached.report))
                )
            with self._lock:
                self._entries[project_id] = cached
            return cached

    def latest(
        self, factory: sessionmaker[Session], project_id: int
    ) -> tuple[CachedReport | None, bool, str | None]:
        """(the newest report there is, whether it is current, the last error).

        Never computes in the caller's thread: a missing or outdated report
        (with plots) is recomputed in a background thread, one per project.
        """
        with read_only(factory) as session:
            key = report_key(session=session, project_id=project_id)
        cached = self.peek(project_id)
        current = cached is not None and cached.key == key and bool(cached.plots)
        if not current:
            self._start(factory, project_id)
        with self._lock:
            error = self._errors.get(project_id)
        return cached, current, error

    def _start(self, factory: sessionmaker[Session], project_id: int) -> None:
        with self._lock:
            if project_id in self._running:
                return
            self._running.add(project_id)
        threading.Thread(
            target=self._refresh,
            args=(factory, project_id),
            name=f"labelwise-report-{project_id}",
            daemon=True,
        ).start()

    def _refresh(self, factory: sessionmaker[Session], project_id: int) -> None:
        from labelwise.exceptions import LabelwiseError

        try:
            self.get(factory, project_id, plots=True)
        except LabelwiseError as exc:
            with self._lock:
                self._errors[project_id] = str(exc)
        except Exception:  # a background thread has no caller to raise to
            logger.exception("The report of project %s failed", project_id)
            with self._lock:
                self._errors[project_id] = "unexpected error (see the server log)"
        else:
            with self._lock:
                self._errors.pop(project_id, None)
        finally:
            with self._lock:
                self._running.discard(project_id)
