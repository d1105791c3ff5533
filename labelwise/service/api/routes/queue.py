"""The label queue of a project: claim the next item, undo, the caller's status."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from labelwise.service.api.deps import (
    CurrentMember,
    NowDep,
    ProjectDep,
    SessionDep,
    SettingsDep,
)
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import (
    AnnotationPublic,
    ClaimItem,
    ClaimPublic,
    QueueStatusPublic,
)
from labelwise.service.queue.rules import NoAssignment
from labelwise.service.queue.service import claim_next, queue_status, undo_last

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
def claim(
    session: SessionDep,
    member: CurrentMember,
    project: ProjectDep,
    settings: SettingsDep,
    now: NowDep,
) -> ClaimPublic | Response:
    """Lease the caller's next item of the project (200), or 204 when none is left."""
    result = claim_next(
        session=session,
        project=project,
        member=member,
        now=now,
        ttl_seconds=settings.lease_ttl_seconds,
    )
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
