"""``/leases/{lease_id}``: answer, skip, flag or renew an item the caller holds."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from labelwise.service.api.deps import (
    CurrentMember,
    LeaseDep,
    LeaseId,
    NowDep,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    TokenDep,
    in_write_transaction,
)
from labelwise.service.api.errors import error_responses
from labelwise.service.api.schemas import (
    AnnotationCreate,
    AnnotationPublic,
    FlagCreate,
    LeasePublic,
)
from labelwise.service.queue.service import (
    flag_lease,
    renew_lease,
    skip_lease,
    submit_annotation,
)
from labelwise.service.store.members import authenticate_lease
from labelwise.service.store.schema import Annotation

__all__ = ["router"]

router = APIRouter(tags=["leases"], responses=error_responses(401, 403, 404, 409, 422))


@router.post(
    "/leases/{lease_id}/annotation",
    status_code=status.HTTP_201_CREATED,
    response_model=AnnotationPublic,
    responses={
        200: {
            "model": AnnotationPublic,
            "description": "A replay of the same idempotency key: the saved answer.",
        },
        **error_responses(400),
    },
)
async def submit(
    body: AnnotationCreate,
    factory: SessionFactoryDep,
    token: TokenDep,
    lease_id: LeaseId,
    now: NowDep,
) -> Response:
    """Save the caller's answer for a leased item (201; 200 on a replayed key)."""
    annotation, created = await in_write_transaction(
        factory, _submit, token, lease_id, body, now
    )
    # Committed; serialised once (FastAPI would validate a returned model again).
    return Response(
        AnnotationPublic.from_annotation(annotation).model_dump_json(),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


def _submit(
    session: Session, token: str, lease_id: int, body: AnnotationCreate, now: datetime
) -> tuple[Annotation, bool]:
    """The submit's transaction: token and lease in one query, then the answer.

    The same checks as :data:`CurrentMember` and :data:`LeaseDep` (401, then
    404 for a lease outside the caller's projects), on one worker thread.
    """
    member, lease = authenticate_lease(session=session, token=token, lease_id=lease_id)
    return submit_annotation(
        session=session,
        lease_id=lease.id,
        member=member,
        label=body.label,
        time_spent_ms=body.time_spent_ms,
        idempotency_key=body.idempotency_key,
        now=now,
    )


@router.post("/leases/{lease_id}/skip")
def skip(
    session: SessionDep, member: CurrentMember, lease: LeaseDep, now: NowDep
) -> LeasePublic:
    """Give the item back; it returns to the queue, never to the caller."""
    ended = skip_lease(session=session, lease_id=lease.id, member=member, now=now)
    return LeasePublic.from_lease(ended)


@router.post("/leases/{lease_id}/flag", responses=error_responses(400))
def flag(
    body: FlagCreate,
    session: SessionDep,
    member: CurrentMember,
    lease: LeaseDep,
    now: NowDep,
) -> LeasePublic:
    """Flag the item (ambiguous, guideline_gap, other); it goes to review."""
    ended = flag_lease(
        session=session,
        lease_id=lease.id,
        member=member,
        flag=body.flag,
        note=body.note,
        now=now,
    )
    return LeasePublic.from_lease(ended)


@router.post("/leases/{lease_id}/renew")
def renew(
    session: SessionDep,
    member: CurrentMember,
    lease: LeaseDep,
    settings: SettingsDep,
    now: NowDep,
) -> LeasePublic:
    """Extend the caller's lease by the lease TTL (never shortens it)."""
    expires_at = renew_lease(
        session=session,
        lease_id=lease.id,
        member=member,
        now=now,
        ttl_seconds=settings.lease_ttl_seconds,
    )
    return LeasePublic(lease_id=lease.id, status="active", expires_at=expires_at)
