"""``GET /projects/{project}/dashboard/scores.png``: the score histogram (leads).

The dashboard shows it through the ``_score_histogram.html`` partial; the same
numbers are JSON at ``/api/v1/projects/{project}/scores/histogram``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from labelwise.service.loop.score_cache import histogram_png, score_histogram
from labelwise.service.store.engine import read_only
from labelwise.service.ui.auth import UIMember
from labelwise.service.ui.routes_lead import LEAD_ROLES
from labelwise.service.ui.routes_review import ui_project, ui_session_factory

__all__ = ["router"]

router = APIRouter()

ProjectName = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/projects/{project}/dashboard/scores.png")
def score_histogram_png(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """The latest round's pool scores as a PNG histogram (leads and admins)."""
    with read_only(ui_session_factory(request)) as session:
        found = ui_project(session, member, project, LEAD_ROLES, "dashboard")
        data = score_histogram(
            session=session,
            project=found,
            data_dir=request.app.state.settings.resolved_data_dir(),
        )
    return Response(
        histogram_png(data),
        media_type="image/png",
        headers={"Cache-Control": "no-store"},
    )
