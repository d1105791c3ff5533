"""The lead dashboard: backlog, throughput, caps, agreement, rounds and imports.

- ``GET /projects/{project}/dashboard``: the numbers (leads and admins of the
  project; others get 403, non-members 404);
- ``POST /projects/{project}/dashboard/round``: run a round and queue its
  batch in one transaction (``start_round``), then flash the summary;
- ``POST /projects/{project}/dashboard/import``: a multipart upload imported
  with the atomic ``import_file`` from a temporary copy. A refused import
  lists every bad record (``FILE:LINE: field: message``) and writes nothing.

Every post checks the CSRF token first.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from labelwise.exceptions import (
    ConfigError,
    ConflictError,
    ImportRejected,
    InvalidInputError,
    LabelwiseError,
    PoolExhausted,
)
from labelwise.policy import get_policy_names
from labelwise.service.api.routes.rounds import start_round
from labelwise.service.io.importer import import_file
from labelwise.service.quality import annotator_quality
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.review import dashboard
from labelwise.service.store.schema import ITEM_ROLES, Member
from labelwise.service.ui.auth import UIMember, require_csrf
from labelwise.service.ui.roi import roi_context
from labelwise.service.ui.routes_review import (
    add_flash,
    pop_flashes,
    ui_project,
    ui_session_factory,
)
from labelwise.service.ui.routes_training import training_context
from labelwise.service.ui.templating import render

__all__ = ["LEAD_ROLES", "router"]

router = APIRouter()

#: Roles that may open the dashboard, start rounds and import.
LEAD_ROLES = ("lead", "admin")
_PAGE = "dashboard"
#: Default batch size of the "Start a round" form.
DEFAULT_BATCH = 50
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

ProjectName = Annotated[str, Path(min_length=1, max_length=200)]


def _dashboard_url(project: str) -> str:
    return f"/projects/{quote(project, safe='')}/dashboard"


def _page(
    request: Request,
    member: Member,
    project: str,
    *,
    import_errors: list[str] | None = None,
    import_message: str | None = None,
    status_code: int = 200,
) -> Response:
    with read_only(ui_session_factory(request)) as session:
        found = ui_project(session, member, project, LEAD_ROLES, _PAGE)
        data = dashboard(session=session, project=found, now=datetime.now(UTC))
        quality = annotator_quality(session=session, project=found)  # issue #6
        data["training"] = training_context(request, session, found)
    latest = data["latest_round"]
    context: dict[str, Any] = {
        "project": found,
        **data,
        "mix_max": max((n for _, n in latest["mix"]), default=0) if latest else 0,
        "policies": get_policy_names(),
        "default_policy": (latest or {}).get("policy_name") or "default",
        "default_batch": (latest or {}).get("batch_size") or DEFAULT_BATCH,
        "roles": ITEM_ROLES,
        "flashes": pop_flashes(request),
        "import_errors": import_errors,
        "import_message": import_message,
        "annotator_quality": quality,
        "roi": roi_context(request, found.id),
    }
    return render(
        request, "dashboard.html", context, status_code=status_code, member=member
    )


@router.get("/projects/{project}/dashboard")
def dashboard_page(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """The lead dashboard of ``project``."""
    return _page(request, member, project)


def _batch_size(value: Any) -> int:
    text = value.strip() if isinstance(value, str) else ""
    if text.isdigit() and 1 <= int(text) <= 100_000:
        return int(text)
    raise InvalidInputError(
        f"The batch size must be a whole number from 1 to 100000. Got {value!r}.",
        hint="Type how many items the round should pick, e.g. 50.",
    )


def _run_round(
    request: Request, member: Member, project: str, raw_batch: Any, policy: Any
) -> None:
    """Run and queue a round (one transaction); flash the summary or the problem."""
    try:
        batch_size = _batch_size(raw_batch)
        with transaction(ui_session_factory(request)) as session:
            found = ui_project(session, member, project, LEAD_ROLES, _PAGE)
            summary = start_round(
                session=session,
                project=found,
                batch_size=batch_size,
                policy=policy if isinstance(policy, str) else "",
                seed=None,
                data_dir=request.app.state.settings.resolved_data_dir(),
            )
    except (InvalidInputError, ConfigError, ConflictError, PoolExhausted) as exc:
        add_flash(request, _describe(exc), "error")
    else:
        mix = ", ".join(f"{n} {r}" for r, n in sorted(summary.counts_by_reason.items()))
        model = summary.model_version or "none (cold start)"
        add_flash(
            request,
            f"Round {summary.round_number} queued {summary.selected} items "
            f"({mix or 'none'}); policy {summary.policy} version "
            f"{summary.policy_version}, model version {model}.",
        )


@router.post("/projects/{project}/dashboard/round")
async def start_round_form(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """Run a round with the posted batch size and policy name; back to the dashboard."""
    async with request.form() as form:
        require_csrf(request, form)
        raw_batch, policy = form.get("batch_size"), form.get("policy")
    await run_in_threadpool(_run_round, request, member, project, raw_batch, policy)
    return RedirectResponse(_dashboard_url(project), status_code=303)


def _describe(exc: LabelwiseError) -> str:
    return str(exc)


def _safe_name(filename: str | None) -> str:
    base = FilePath(filename or "").name
    cleaned = _SAFE_NAME.sub("_", base).strip("._")
    return cleaned[-120:] or "upload.jsonl"


def _import_upload(
    request: Request, member: Member, project: str, upload: Any, role: Any
) -> tuple[Response | None, str | None, list[str]]:
    """Import ``upload`` from a temporary copy: a redirect, or the problems found."""
    errors: list[str] = []
    message: str | None = None
    if not isinstance(upload, UploadFile) or not upload.filename:
        message = "Expected a file to import. Got none."
        errors = ["Choose a JSONL, CSV, Label Studio or Prodigy file and upload it."]
    else:
        shown = FilePath(upload.filename).name
        path = FilePath(tempfile.gettempdir()) / "labelwise-upload"
        try:
            with tempfile.TemporaryDirectory(prefix="labelwise-upload-") as folder:
                path = FilePath(folder) / _safe_name(upload.filename)
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out)
                with transaction(ui_session_factory(request)) as session:
                    found = ui_project(session, member, project, LEAD_ROLES, _PAGE)
                    report = import_file(
                        session=session,
                        project=found,
                        path=path,
                        role=role if isinstance(role, str) else "",
                    )
        except ImportRejected as exc:
            message = exc.message.replace(str(path), shown)
            errors = [
                f"{shown}:{error.line}: {error.field}: {error.message}"
                for error in exc.errors
            ]
        except (InvalidInputError, ConflictError, ConfigError) as exc:
            message = _describe(exc).replace(str(path), shown)
        else:
            add_flash(
                request,
                f"Imported {report.items} {report.role} items from {shown!r} "
                f"({report.labels} with labels).",
            )
            return (
                RedirectResponse(_dashboard_url(project), status_code=303),
                None,
                [],
            )
    return None, message, errors


@router.post("/projects/{project}/dashboard/import")
async def import_form(
    request: Request, member: UIMember, project: ProjectName
) -> Response:
    """Import the uploaded file as items of the posted role, all records or none."""
    async with request.form() as form:
        require_csrf(request, form)
        # Copying, validating and writing block: keep them off the event loop.
        redirect, message, errors = await run_in_threadpool(
            _import_upload, request, member, project, form.get("file"), form.get("role")
        )
    if redirect is not None:
        return redirect
    return _page(
        request,
        member,
        project,
        import_errors=errors,
        import_message=message,
        status_code=422,
    )
