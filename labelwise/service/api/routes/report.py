"""``/projects/{project}/report``: the ROI and monitoring figures (admins, leads).

The report trains dozens of small models, so it runs in a worker thread (the
event loop keeps serving) and the last one per project is cached until the
project's annotations, rounds, model versions or items change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from labelwise.service.api.deps import LeadProject, SessionFactoryDep
from labelwise.service.api.errors import error_responses
from labelwise.service.report import ReportCache

__all__ = ["report_cache", "router"]

router = APIRouter(tags=["report"], responses=error_responses(401, 403, 404))


def report_cache(request: Request) -> ReportCache:
    """The app's report cache, made on first use (one per app)."""
    state = request.app.state
    cache = getattr(state, "report_cache", None)
    if cache is None:
        cache = ReportCache()
        state.report_cache = cache
    return cache


@router.get("/projects/{project}/report")
async def get_report(
    request: Request, project: LeadProject, factory: SessionFactoryDep
) -> dict[str, Any]:
    """Every ROI and monitoring figure of the project (admin, leads): docs/report.md."""
    cached = await run_in_threadpool(report_cache(request).get, factory, project.id)
    return cached.report
