"""The label queue of a project: claim the next item, undo, the caller's status."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from labelwise.service.api.deps import (
    CurrentMember,
    NowDep,
    ProjectDep,
    ProjectName,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    TokenDep,
    in_write_transaction,
)
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import (
    AnnotationPublic,
    ClaimItem,
    ClaimPublic,
    QueueStatusPublic,
)
from labelwise.service.queue.rules import NoAssignment
from labelwise.service.queue.service import (
    ClaimResult,
    claim_next,
    queue_status,
    undo_last,
)
from labelwise.service.store.members import authenticate_project

__all__ = ["REASON_HEADER", "router"]

#: Why a claim found nothing: cap_reached or exhausted (on a 204).
REASON_HEADER = "X-Labelwise-Reason"

router = APIRouter(tags=["queue"], responses=error_responses(401, 403, 404))


@router.post(
    "/projects/{project}/next",
    response_model=ClaimPublic,
    responses={
        204: {
            "description": "Nothing left for the caller now; the header "
            f"{REASON_HEADER} says why (cap_reached or exhausted).",
        },
        **error_responses(409),
    },
)
async def claim(
    factory: SessionFactoryDep,
    token: TokenDep,
    project: ProjectName,
    settings: SettingsDep,
    now: NowDep,
) -> Response:
    """Lease the caller's next item of the project (200), or 204 when none is left."""
    result = await in_write_transaction(
        factory, _claim, token, project, now, settings.lease_ttl_seconds
    )
    # Committed: serialise outside the transaction (its row locks are gone).
    if isinstance(result, NoAssignment):
        return Response(
            status_code=status.HTTP_204_NO_CONTENT,
            headers={REASON_HEADER: result.reason},
        )
    # The values come from the store, typed and UTC already: serialise them
    # once (FastAPI would validate a returned model again).
    body = ClaimPublic.model_construct(
        lease_id=result.lease_id,
        item=ClaimItem.model_construct(
            id=result.item_id, external_id=result.external_id, fields=result.fields
        ),
        expires_at=result.expires_at,
        reason=result.reason,
    )
    return Response(body.model_dump_json(), media_type="application/json")


def _claim(
    session: Session, token: str, name: str, now: datetime, ttl_seconds: float
) -> ClaimResult | NoAssignment:
    """The claim's transaction: token and project in one query, then the claim.

    The same checks as :data:`CurrentMember` and :data:`ProjectDep` (401, then
    404 for a project the caller may not see), on one worker thread.
    """
    member, project = authenticate_project(session=session, token=token, name=name)
    return claim_next(
        session=session,
        project=project,
        member=member,
        now=now,
        ttl_seconds=ttl_seconds,
    )


@router.post("/projects/{project}/undo", responses=error_responses(409))
def undo(
    session: SessionDep, member: CurrentMember, project: ProjectDep, now: NowDep
) -> AnnotationPublic:
    """Take back the caller's newest answer while its lease runs; the lease reopens."""
    annotation = undo_last(session=session, project=project, member=member, now=now)
    return AnnotationPublic.from_annotation(annotation)


@router.get("/projects/{project}/queue")
def read_queue(
    session: SessionDep, member: CurrentMember, project: ProjectDep, now: NowDep
) -> QueueStatusPublic:
    """The queue's counts and the caller's own: leases, done today, caps."""
    counts = queue_status(session=session, project=project, member=member, now=now)
    return QueueStatusPublic.model_validate(counts)
