"""The dashboard's training section: status of the jobs and the "Retrain now" button.

- ``POST /projects/{project}/dashboard/train``: queue a training job
  (trigger "click"; at most one pending per project), wake this process's
  worker and go back to the dashboard at once; the job's status shows in the
  section (templates/_training.html) as it moves from queued to done/failed.

:func:`training_context` gives the section its data; routes_lead adds it to
the dashboard's context. The post checks the CSRF token first.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from labelwise.exceptions import ConfigError, ConflictError, InvalidInputError
from labelwise.service.loop.jobs import request_training, training_status
from labelwise.service.store.engine import transaction
from labelwise.service.store.schema import Member, Project
from labelwise.service.ui.auth import UIMember, require_csrf
from labelwise.service.ui.routes_review import add_flash, ui_project, ui_session_factory

__all__ = ["router", "training_context"]

router = APIRouter()

_ROLES = ("lead", "admin")
_PAGE = "dashboard"
ProjectName = Annotated[str, Path(min_length=1, max_length=200)]


def training_context(
    request: Request, session: Session, project: Project
) -> dict[str, Any]:
    """The training section's data: recent jobs, the pending one, the trigger."""
    every = int(request.app.state.settings.retrain_every)
    return training_status(session=session, project=project, default_every=every)


def _queue(request: Request, member: Member, project: str) -> None:
    try:
        with transaction(ui_session_factory(request)) as session:
            found = ui_project(session, member, project, _ROLES, _PAGE)
            job, created = request_training(
                session=session, project=found, trigger="click", member=member
            )
            job_id, status = job.id, job.status
    except (InvalidInputError, ConfigError, ConflictError) as exc:
        add_flash(request, str(exc), "error")
        return
    worker = getattr(request.app.state, "training_worker", None)
    if worker is not None:
        worker.wake()
    if created:
        add_flash(request, f"Training job {job_id} queued; its status shows below.")
    else:
        add_flash(request, f"Training job {job_id} is already {status}.")


@router.post("/projects/{project}/dashboard/train")
async def train_form(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """Queue retraining (train, score, swap the queue); back to the dashboard."""
    async with request.form() as form:
        require_csrf(request, form)
    await run_in_threadpool(_queue, request, member, project)
    return RedirectResponse(
        f"/projects/{quote(project, safe='')}/dashboard", status_code=303
    )
