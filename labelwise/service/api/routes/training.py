"""``/projects/{project}/train``: queue retraining, watch its jobs, model versions.

``POST .../train`` only inserts a job row and answers 202 at once; the
training worker of a server process trains, scores the pool and swaps the
queue (docs/loop.md). ``GET .../train/jobs`` shows queued, training, done and
failed jobs with their errors. Admins and the project's leads only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Request, status
from pydantic import BaseModel, ConfigDict, Field

from labelwise.policy import BatchPolicy, get_policy
from labelwise.service.api.deps import CurrentMember, LeadProject, SessionDep
from labelwise.service.api.errors import error_responses
from labelwise.service.loop.failures import failure_summary
from labelwise.service.loop.jobs import (
    get_job,
    job_to_dict,
    list_jobs,
    list_model_versions,
    request_training,
)

__all__ = ["TrainCreate", "TrainingJobPublic", "router", "wake_worker"]

router = APIRouter(tags=["training"], responses=error_responses(401, 403, 404))


class TrainCreate(BaseModel):
    """What the next round should be: unset fields repeat the latest round's."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int | None = Field(default=None, ge=1, le=100_000)
    policy: str | dict[str, Any] | None = Field(
        default=None,
        description="A policy name (`labelwise policies`) or a policy spec object.",
    )
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class TrainingJobPublic(BaseModel):
    """A training job: its status (queued/training/done/failed), error and results."""

    job_id: int
    status: str
    trigger: str
    requested_by: str | None
    batch_size: int | None
    policy: str | None
    seed: int | None
    n_final_labels: int
    worker: str | None
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    model: dict[str, Any] | None
    round: dict[str, Any] | None
    created: bool = Field(
        default=False, description="False when an already pending job is returned."
    )


def wake_worker(request: Request) -> None:
    """Tell this process's training worker to look for work now."""
    worker = getattr(request.app.state, "training_worker", None)
    if worker is not None:
        worker.wake()


def _policy(policy: str | dict[str, Any] | None) -> BatchPolicy | None:
    """A named policy or a spec object; never a file on the server."""
    if policy is None:
        return None
    if isinstance(policy, str):
        return get_policy(policy)
    return BatchPolicy.from_dict(policy)


JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post(
    "/projects/{project}/train",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 422),
)
def request_train(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    project: LeadProject,
    member: CurrentMember,
    body: TrainCreate | None = None,
) -> TrainingJobPublic:
    """Queue retraining (train, score the pool, swap the queue); answers at once.

    A project has one pending job at most: asking again returns it.
    """
    body = body or TrainCreate()
    job, created = request_training(
        session=session,
        project=project,
        trigger="api",
        member=member,
        batch_size=body.batch_size,
        policy=_policy(body.policy),
        seed=body.seed,
    )
    session.flush()
    background.add_task(wake_worker, request)  # runs after the commit and reply
    return TrainingJobPublic(**job_to_dict(session, job), created=created)


@router.get("/projects/{project}/train/jobs")
def read_jobs(session: SessionDep, project: LeadProject) -> list[TrainingJobPublic]:
    """The project's newest training jobs, newest first, with status and error."""
    return [
        TrainingJobPublic(**job_to_dict(session, job))
        for job in list_jobs(session=session, project=project)
    ]


@router.get("/projects/{project}/train/jobs/{job_id}")
def read_job(
    session: SessionDep, project: LeadProject, job_id: JobId
) -> TrainingJobPublic:
    """One training job: queued, training, done (model and round) or failed (error)."""
    job = get_job(session=session, project=project, job_id=job_id)
    return TrainingJobPublic(**job_to_dict(session, job))


@router.get("/projects/{project}/model-versions")
def read_model_versions(
    session: SessionDep, project: LeadProject
) -> list[dict[str, Any]]:
    """Every model version: labels seen (count, hash), calibration error, metrics."""
    return list_model_versions(session=session, project=project)


@router.get("/projects/{project}/failures")
def read_failures(session: SessionDep, project: LeadProject) -> dict[str, Any]:
    """Imported production failures and the error-driven picks they led to."""
    return failure_summary(session=session, project=project)
