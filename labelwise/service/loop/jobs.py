"""Retraining jobs: request, claim, run, and the "every N new final labels" trigger.

A job is a ``training_jobs`` row: queued → training → done or failed (with
the error). :func:`request_training` queues one (a project has at most one
queued or training job: the UNIQUE ``pending_project_id`` enforces it, so a
second request gets the pending job back). :func:`claim_job` moves the oldest
queued job to "training" with one conditional UPDATE, so two server processes
never train the same job. :func:`run_job` then works in three steps that
never hold the write lock while the model trains:

1. a read-only session plans the round (reads the labels and the pool,
   trains, scores, builds the batch: :func:`~.rounds.plan_round`);
2. one write transaction records the model version and the round, swaps the
   queue to the new batch (the old round's unleased entries retire, leased
   ones stay valid until their lease ends) and marks the job done;
3. on any error, another transaction marks the job failed with the message.

:class:`~labelwise.service.loop.worker.TrainingWorker` runs these in a thread
of each server process. docs/loop.md tells the whole story.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from labelwise.exceptions import ConflictError, InvalidInputError, NotFoundError
from labelwise.policy import BatchPolicy, get_policy, load_policy
from labelwise.service.loop.rounds import commit_round, plan_round
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.schema import (
    FinalLabel,
    Item,
    Member,
    ModelVersion,
    Project,
    Round,
    TrainingJob,
    as_utc,
    utcnow,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "JOB_STATUSES",
    "STALE_AFTER",
    "TRIGGERS",
    "check_retrain_triggers",
    "claim_job",
    "get_job",
    "has_queued_work",
    "job_to_dict",
    "list_jobs",
    "list_model_versions",
    "projects_due",
    "request_training",
    "retrain_every",
    "run_job",
    "run_next_job",
    "training_status",
    "worker_name",
]

QUEUED, TRAINING, DONE, FAILED = "queued", "training", "done", "failed"
#: Every status a job goes through.
JOB_STATUSES = (QUEUED, TRAINING, DONE, FAILED)
#: Who asked: a lead's click, the label-count trigger, an API call, the CLI.
TRIGGERS = ("click", "auto", "api", "cli")
#: Batch size of a job when neither the request nor an earlier round says.
DEFAULT_BATCH_SIZE = 50
#: A job "training" for longer than this lost its worker (process killed).
STALE_AFTER = timedelta(hours=1)
#: Project setting that overrides Settings.retrain_every (0 switches it off).
RETRAIN_SETTING = "retrain_every"
_NO_SYNC = {"synchronize_session": False}
_ERROR_MAX = 4000


def worker_name() -> str:
    """This thread's worker id: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _rowcount(session: Session, statement: Any) -> int:
    result = session.execute(statement, execution_options=_NO_SYNC)
    return int(cast("CursorResult[Any]", result).rowcount)


def _count_final_labels(session: Session, project: Project) -> int:
    """Final labels of the items a model trains on (pool and failure)."""
    query = (
        select(func.count())
        .select_from(FinalLabel)
        .join(Item, Item.id == FinalLabel.item_id)
        .where(FinalLabel.project_id == project.id, Item.role.in_(["pool", "failure"]))
    )
    return int(session.scalar(query) or 0)


def _latest_round(session: Session, project: Project) -> Round | None:
    return session.scalar(
        select(Round)
        .where(Round.project_id == project.id)
        .order_by(Round.number.desc())
        .limit(1)
    )


def _resolve_params(
    session: Session,
    project: Project,
    batch_size: int | None,
    policy: str | dict[str, Any] | BatchPolicy | None,
    seed: int | None,
) -> dict[str, Any]:
    """A job's round parameters; unset ones come from the latest round, else defaults.

    The policy is stored resolved (its spec), so the worker never reads a file.
    """
    latest = _latest_round(session, project)
    if batch_size is None:
        batch_size = latest.batch_size if latest is not None else DEFAULT_BATCH_SIZE
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise InvalidInputError(
            f"A training job's batch_size must be an int >= 1. Got {batch_size!r}.",
            hint="Pass how many items the next round should pick, e.g. 50.",
        )
    if batch_size < 1:
        raise InvalidInputError(
            f"A training job's batch_size must be an int >= 1. Got {batch_size!r}.",
            hint="Pass how many items the next round should pick, e.g. 50.",
        )
    spec: BatchPolicy
    if policy is None:
        spec = (
            BatchPolicy.from_dict(latest.policy)
            if latest is not None
            else get_policy("default")
        )
    elif isinstance(policy, BatchPolicy):
        spec = policy
    elif isinstance(policy, dict):
        spec = BatchPolicy.from_dict(policy)
    else:
        spec = load_policy(policy)
    return {"batch_size": batch_size, "policy": spec.to_dict(), "seed": seed}


def _pending(session: Session, project: Project) -> TrainingJob | None:
    return session.scalar(
        select(TrainingJob).where(TrainingJob.pending_project_id == project.id)
    )


def request_training(
    *,
    session: Session,
    project: Project,
    trigger: str,
    member: Member | None = None,
    batch_size: int | None = None,
    policy: str | dict[str, Any] | BatchPolicy | None = None,
    seed: int | None = None,
) -> tuple[TrainingJob, bool]:
    """Queue a training job: (the new job, True), or (the pending one, False).

    A project has at most one queued or training job; asking again while one
    is pending returns that job instead of queueing a second.
    """
    if trigger not in TRIGGERS:
        raise InvalidInputError(
            f"A training trigger must be one of {', '.join(TRIGGERS)}. Got "
            f"{trigger!r} instead.",
            hint="Use 'click' for a lead's button, 'auto' for the label-count "
            "trigger, 'api' or 'cli'.",
        )
    params = _resolve_params(session, project, batch_size, policy, seed)
    pending = _pending(session, project)
    if pending is not None:
        return pending, False
    job = TrainingJob(
        project_id=project.id,
        status=QUEUED,
        trigger=trigger,
        requested_by=None if member is None else member.id,
        params=params,
        pending_project_id=project.id,
        n_final_labels=_count_final_labels(session, project),
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:  # another request queued one first
        found = _pending(session, project)
        if found is None:  # pragma: no cover - it finished in between
            raise ConflictError(
                f"Project {project.name!r} had a training job queued and finished "
                "while this request tried to queue another.",
                hint="Ask again.",
            ) from None
        return found, False
    return job, True


def _fail_stale(session: Session, now: datetime) -> int:
    """Jobs "training" for longer than STALE_AFTER lost their worker: failed."""
    return _rowcount(
        session,
        update(TrainingJob)
        .where(
            TrainingJob.status == TRAINING,
            TrainingJob.started_at < now - STALE_AFTER,
        )
        .values(
            status=FAILED,
            pending_project_id=None,
            finished_at=now,
            error=f"The worker stopped answering: the job was still training after "
            f"{STALE_AFTER} (its server process probably died). Request training "
            "again.",
        ),
    )


def claim_job(
    *,
    session: Session,
    worker: str,
    now: datetime,
    job_id: int | None = None,
) -> TrainingJob | None:
    """Move the oldest queued job (or ``job_id``) to "training" for ``worker``.

    One conditional UPDATE (``WHERE status = 'queued'``): of two workers that
    pick the same job, exactly one gets it; the other gets None.
    """
    _fail_stale(session, now)
    if job_id is None:
        job_id = session.scalar(
            select(TrainingJob.id)
            .where(TrainingJob.status == QUEUED)
            .order_by(TrainingJob.id)
            .limit(1)
        )
        if job_id is None:
            return None
    won = _rowcount(
        session,
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == QUEUED)
        .values(status=TRAINING, worker=worker[:100], started_at=now),
    )
    if not won:
        return None
    return session.get(TrainingJob, job_id, populate_existing=True)


def _finish(
    session: Session, job_id: int, status: str, now: datetime, **values: Any
) -> bool:
    return bool(
        _rowcount(
            session,
            update(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.status == TRAINING)
            .values(status=status, pending_project_id=None, finished_at=now, **values),
        )
    )


def _describe_error(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    hint = getattr(error, "hint", None)
    text = f"{type(error).__name__}: {message}"
    if hint:
        text += f" Hint: {hint}"
    return text[:_ERROR_MAX]


def run_job(
    factory: sessionmaker[Session],
    job_id: int,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[], None] | None = None,
) -> TrainingJob:
    """Train, score and swap the queue for a claimed job; it ends done or failed.

    ``progress`` is called after planning and after committing. Errors are
    recorded on the job (status "failed"), not raised.
    """
    tick = progress or (lambda: None)
    try:
        with read_only(factory) as session:
            job = session.get(TrainingJob, job_id)
            if job is None:
                raise NotFoundError(
                    f"No training job {job_id}.", hint="List the jobs of the project."
                )
            project = session.get(Project, job.project_id)
            assert project is not None  # the foreign key guarantees it
            params = dict(job.params or {})
            plan = plan_round(
                session=session,
                project=project,
                batch_size=int(params.get("batch_size") or DEFAULT_BATCH_SIZE),
                policy=BatchPolicy.from_dict(params["policy"]),
                seed=params.get("seed"),
                data_dir=data_dir,
            )
        tick()
        with transaction(factory) as session:
            project = session.get(Project, plan.project_id)
            assert project is not None
            summary = commit_round(session=session, project=project, plan=plan)
            row = session.get(Round, summary.round_id)
            assert row is not None
            if not _finish(
                session,
                job_id,
                DONE,
                utcnow(),
                round_id=row.id,
                model_version_id=row.model_version_id,
            ):
                raise ConflictError(
                    f"Training job {job_id} was no longer 'training' when its round "
                    "was ready (marked failed as stale meanwhile); the round was not "
                    "written.",
                    hint="Request training again.",
                )
        tick()
    except Exception as error:
        with transaction(factory) as session:
            _finish(session, job_id, FAILED, utcnow(), error=_describe_error(error))
    with read_only(factory) as session:
        found = session.get(TrainingJob, job_id)
        assert found is not None
        session.expunge(found)
        return found


def run_next_job(
    factory: sessionmaker[Session],
    *,
    worker: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> TrainingJob | None:
    """Claim the oldest queued job and run it; None when none is queued."""
    with transaction(factory) as session:
        job = claim_job(session=session, worker=worker or worker_name(), now=utcnow())
        job_id = None if job is None else job.id
    if job_id is None:
        return None
    return run_job(factory, job_id, data_dir=data_dir)


# ------------------------------------------------------------------------- trigger


def retrain_every(project: Project, default: int) -> int:
    """New final labels between automatic retrains (0: off); projects may override."""
    value = (project.settings or {}).get(RETRAIN_SETTING)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _new_labels(session: Session, project: Project, since: datetime) -> int:
    query = (
        select(func.count())
        .select_from(FinalLabel)
        .join(Item, Item.id == FinalLabel.item_id)
        .where(
            FinalLabel.project_id == project.id,
            Item.role.in_(["pool", "failure"]),
            FinalLabel.updated_at > since,
        )
    )
    return int(session.scalar(query) or 0)


def _since(session: Session, project: Project) -> datetime | None:
    """When the last round was built (None: the loop has not started)."""
    latest = _latest_round(session, project)
    return None if latest is None else latest.created_at


def projects_due(*, session: Session, default_every: int) -> list[int]:
    """Ids of the projects whose trigger fires now (reads only; cheap to poll)."""
    pending = set(
        session.scalars(
            select(TrainingJob.pending_project_id).where(
                TrainingJob.pending_project_id.is_not(None)
            )
        )
    )
    due: list[int] = []
    for project in session.scalars(select(Project).order_by(Project.id)):
        every = retrain_every(project, default_every)
        if every <= 0 or project.id in pending:
            continue
        since = _since(session, project)
        if since is not None and _new_labels(session, project, since) >= every:
            due.append(project.id)
    return due


def has_queued_work(*, session: Session, now: datetime) -> bool:
    """Whether a job is queued, or one is stale (reads only; cheap to poll)."""
    found = session.scalar(
        select(TrainingJob.id)
        .where(
            (TrainingJob.status == QUEUED)
            | (
                (TrainingJob.status == TRAINING)
                & (TrainingJob.started_at < now - STALE_AFTER)
            )
        )
        .limit(1)
    )
    return found is not None


def check_retrain_triggers(*, session: Session, default_every: int) -> list[int]:
    """Queue an "auto" job for each project with N new final labels since its round.

    Only projects with a round qualify (the loop has started), none with a
    pending job. Returns the ids of the jobs queued. One count per project.
    """
    queued: list[int] = []
    for project_id in projects_due(session=session, default_every=default_every):
        project = session.get(Project, project_id)
        assert project is not None
        job, created = request_training(
            session=session, project=project, trigger="auto"
        )
        if created:
            queued.append(job.id)
    return queued


# -------------------------------------------------------------------------- status


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def _model_to_dict(row: ModelVersion) -> dict[str, Any]:
    return {
        "model_version": row.version,
        "model_name": row.model_name,
        "n_labels": row.n_labels,
        "labels_hash": row.labels_hash,
        "calibration_method": row.calibration_method,
        "calibration_error": row.calibration_error,
        "metrics": dict(row.metrics or {}),
        "created_at": _iso(row.created_at),
    }


def job_to_dict(session: Session, job: TrainingJob) -> dict[str, Any]:
    """A job as JSON data: status, error, its model version and its round."""
    model = (
        None
        if job.model_version_id is None
        else session.get(ModelVersion, job.model_version_id)
    )
    round_row = None if job.round_id is None else session.get(Round, job.round_id)
    requester = (
        None if job.requested_by is None else session.get(Member, job.requested_by)
    )
    policy = dict(job.params or {}).get("policy") or {}
    return {
        "job_id": job.id,
        "status": job.status,
        "trigger": job.trigger,
        "requested_by": None if requester is None else requester.name,
        "batch_size": dict(job.params or {}).get("batch_size"),
        "policy": policy.get("name") if isinstance(policy, dict) else None,
        "seed": dict(job.params or {}).get("seed"),
        "n_final_labels": job.n_final_labels,
        "worker": job.worker,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "model": None if model is None else _model_to_dict(model),
        "round": None
        if round_row is None
        else {
            "round_id": round_row.id,
            "number": round_row.number,
            "mode": round_row.mode,
            "policy_version": round_row.policy_version,
            "counts_by_reason": dict(round_row.counts_by_reason or {}),
        },
    }


def get_job(*, session: Session, project: Project, job_id: int) -> TrainingJob:
    """The training job ``job_id`` of ``project``."""
    job = session.get(TrainingJob, job_id)
    if job is None or job.project_id != project.id:
        raise NotFoundError(
            f"No training job {job_id} in project {project.name!r}.",
            hint=f"List them with GET /api/v1/projects/{project.name}/train/jobs.",
        )
    return job


def list_jobs(
    *, session: Session, project: Project, limit: int = 20
) -> list[TrainingJob]:
    """The project's newest ``limit`` training jobs, newest first."""
    return list(
        session.scalars(
            select(TrainingJob)
            .where(TrainingJob.project_id == project.id)
            .order_by(TrainingJob.id.desc())
            .limit(limit)
        )
    )


def list_model_versions(*, session: Session, project: Project) -> list[dict[str, Any]]:
    """Every model version of ``project``, oldest first: labels seen, ECE, metrics."""
    rows = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.id)
    )
    return [_model_to_dict(row) for row in rows]


def training_status(
    *, session: Session, project: Project, default_every: int, limit: int = 5
) -> dict[str, Any]:
    """For the dashboard: recent jobs, the pending one, the trigger's progress."""
    jobs = list_jobs(session=session, project=project, limit=limit)
    every = retrain_every(project, default_every)
    since = _since(session, project)
    new = 0 if since is None else _new_labels(session, project, since)
    pending = _pending(session, project)
    return {
        "jobs": [job_to_dict(session, job) for job in jobs],
        "pending": None if pending is None else job_to_dict(session, pending),
        "retrain_every": every,
        "new_labels": new,
        "loop_started": since is not None,
    }
