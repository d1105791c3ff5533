"""``/projects/{project}/rounds``: list rounds, run one now (admins, leads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from labelwise.policy import BatchPolicy, get_policy
from labelwise.service.api.deps import LeadProject, SessionDep, SettingsDep
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import RoundCreate, RoundPublic, RoundSummaryPublic
from labelwise.service.loop.rounds import RoundSummary, run_round
from labelwise.service.queue.service import enqueue_round
from labelwise.service.store.projects import project_summary
from labelwise.service.store.schema import Project, Round

__all__ = ["router"]

router = APIRouter(tags=["rounds"], responses=error_responses(401, 403, 404))


def _policy(policy: str | dict[str, Any]) -> BatchPolicy:
    """A named policy or a spec object; never a file on the server."""
    if isinstance(policy, str):
        return get_policy(policy)
    return BatchPolicy.from_dict(policy)


def start_round(
    *,
    session: Session,
    project: Project,
    batch_size: int,
    policy: str | dict[str, Any],
    seed: int | None,
    data_dir: Path | None = None,
) -> RoundSummary:
    """Run a round of ``project`` and put its batch in the queue.

    ``data_dir`` holds the score cache (``Settings.resolved_data_dir()``).
    """
    summary = run_round(
        session=session,
        project=project,
        batch_size=batch_size,
        policy=_policy(policy),
        seed=seed,
        data_dir=data_dir,
    )
    row = session.get(Round, summary.round_id)
    assert row is not None  # run_round just wrote it
    enqueue_round(session=session, round=row)
    return summary


@router.get("/projects/{project}/rounds")
def list_rounds(session: SessionDep, project: LeadProject) -> list[RoundPublic]:
    """The project's rounds, oldest first (admin, the project's leads)."""
    rounds = project_summary(session=session, project=project)["rounds"]
    return [RoundPublic.model_validate(row) for row in rounds]


@router.post(
    "/projects/{project}/rounds",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409, 422),
)
def create_round(
    body: RoundCreate,
    session: SessionDep,
    project: LeadProject,
    settings: SettingsDep,
) -> RoundSummaryPublic:
    """Train, score the pool and queue the next batch now (admin, leads)."""
    summary = start_round(
        session=session,
        project=project,
        batch_size=body.batch_size,
        policy=body.policy,
        seed=body.seed,
        data_dir=settings.resolved_data_dir(),
    )
    return RoundSummaryPublic.model_validate(summary.to_dict())
