"""``/projects/{project}/scores/histogram``: the latest round's pool scores (leads)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from labelwise.service.api.deps import LeadProject, SessionDep, SettingsDep
from labelwise.service.api.errors import error_responses
from labelwise.service.loop.score_cache import score_histogram

__all__ = ["router"]

router = APIRouter(tags=["scores"], responses=error_responses(401, 403, 404))


@router.get("/projects/{project}/scores/histogram")
def read_score_histogram(
    session: SessionDep, project: LeadProject, settings: SettingsDep
) -> dict[str, Any]:
    """Histogram of the top-class probability over the latest round's pool scores.

    Keys: ``project``, ``round_number``, ``model_version``, ``score``
    (``"max_probability"``), ``n_items`` (0 without cached scores), ``edges``
    (21 bin edges over [0, 1]) and ``counts`` (20). Admin and the project's leads.
    """
    return score_histogram(
        session=session, project=project, data_dir=settings.resolved_data_dir()
    )
