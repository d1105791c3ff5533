"""The annotator page and the small JSON endpoints its script calls.

``GET /projects/{project}/annotate`` renders the page; the script then talks
to ``/ui/api/…`` with the session cookie and the ``X-CSRF-Token`` header.
Each JSON endpoint runs one queue use-case of
:mod:`labelwise.service.queue.service` in one transaction, committed before
the answer (the same calls as the REST API's queue and lease routes):

| method and path | use-case |
|---|---|
| ``POST /ui/api/projects/{project}/next`` | ``claim_next`` (or a lease the page lost) |
| ``POST /ui/api/leases/{lease_id}/annotation`` | ``submit_annotation`` |
| ``POST /ui/api/leases/{lease_id}/skip`` | ``skip_lease`` |
| ``POST /ui/api/leases/{lease_id}/flag`` | ``flag_lease`` |
| ``POST /ui/api/leases/{lease_id}/renew`` | ``renew_lease`` |
| ``POST /ui/api/projects/{project}/undo`` | ``undo_last`` |
| ``GET /ui/api/projects/{project}/queue`` | ``queue_status`` |
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from labelwise.exceptions import NotFoundError
from labelwise.service.api.deps import NowDep, SettingsDep
from labelwise.service.queue.rules import NoAssignment
from labelwise.service.queue.service import (
    ClaimResult,
    claim_next,
    flag_lease,
    queue_status,
    renew_lease,
    skip_lease,
    submit_annotation,
    undo_last,
)
from labelwise.service.store.engine import read_only, transaction
from labelwise.service.store.labels import decode_label
from labelwise.service.store.members import get_visible_lease, get_visible_project
from labelwise.service.store.projects import current_guideline
from labelwise.service.store.schema import (
    Annotation,
    Item,
    Lease,
    Member,
    Project,
    as_utc,
)
from labelwise.service.ui.auth import CsrfHeader, UIMember, require_ui_member
from labelwise.service.ui.templating import render

__all__ = ["FLAG_CHOICES", "SHORTCUT_KEYS", "label_keys", "router"]

router = APIRouter()

#: Keys reserved for actions: skip, flag, undo, guideline.
_RESERVED = frozenset("sfug")
#: The keys of the label buttons, in order: 1-9, then letters but s, f, u, g.
SHORTCUT_KEYS = tuple("123456789") + tuple(
    c for c in string.ascii_lowercase if c not in _RESERVED
)
#: The flags an annotator may raise, with their display names.
FLAG_CHOICES = (
    ("ambiguous", "Ambiguous"),
    ("guideline_gap", "Guideline gap"),
    ("other", "Other"),
)


def label_keys(labels: list[str]) -> list[tuple[str, str | None]]:
    """Each label with its shortcut key (None past the 34th label)."""
    keys = list(SHORTCUT_KEYS)
    return [
        (label, keys[i] if i < len(keys) else None) for i, label in enumerate(labels)
    ]


def _factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


# ---------------------------------------------------------------------- the page


@router.get("/projects/{project}/annotate")
def annotate_page(request: Request, project: str, member: UIMember) -> Response:
    """The annotator page of ``project``: one item at a time, keyboard first."""
    with read_only(_factory(request)) as session:
        try:
            found = get_visible_project(session=session, member=member, name=project)
        except NotFoundError as exc:
            return render(
                request,
                "error.html",
                {"title": "No such project", "message": exc.message, "hint": exc.hint},
                status_code=404,
                member=member,
            )
        guideline = current_guideline(session=session, project=found)
        context = {
            "project": found,
            "labels": label_keys(list(found.labels)),
            "multi_label": bool(found.multi_label),
            "text_field": found.text_field or "",
            "fields": list(found.fields),
            "guideline": guideline.text if guideline else None,
            "guideline_version": guideline.version if guideline else None,
            "flags": FLAG_CHOICES,
        }
    return render(request, "annotate.html", context, member=member)


# --------------------------------------------------------------------- JSON API


class NextBody(BaseModel):
    """The leases the page already holds (so a prefetch never repeats one)."""

    model_config = ConfigDict(extra="forbid")
    have: list[int] = Field(default_factory=list, max_length=10)


class SubmitBody(BaseModel):
    """An answer: the label (or labels), the time spent and an idempotency key."""

    model_config = ConfigDict(extra="forbid")
    label: str | list[str]
    time_spent_ms: int | None = Field(default=None, ge=0, le=2**31 - 1)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)


class FlagBody(BaseModel):
    """A flag (ambiguous, guideline_gap, other) and an optional note."""

    model_config = ConfigDict(extra="forbid")
    flag: str = Field(max_length=40)
    note: str | None = Field(default=None, max_length=2000)


def _project(session: Session, request: Request, name: str) -> tuple[Member, Project]:
    member = require_ui_member(request, session)
    return member, get_visible_project(session=session, member=member, name=name)


def _claim_json(
    lease_id: int,
    item_id: int,
    external_id: str,
    fields: dict[str, Any],
    expires_at: datetime,
    reason: str,
) -> dict[str, Any]:
    return {
        "lease_id": lease_id,
        "item": {"id": item_id, "external_id": external_id, "fields": fields},
        "expires_at": as_utc(expires_at).isoformat(),
        "reason": reason,
    }


def _held_elsewhere(
    session: Session, project: Project, member: Member, have: list[int], now: datetime
) -> dict[str, Any] | None:
    """An active lease of the member the page does not show (after a reload)."""
    query = select(Lease).where(
        Lease.project_id == project.id,
        Lease.member_id == member.id,
        Lease.status == "active",
        Lease.expires_at > now,
    )
    if have:
        query = query.where(Lease.id.not_in(have))
    lease = session.scalar(query.order_by(Lease.created_at, Lease.id).limit(1))
    if lease is None:
        return None
    item = session.get(Item, lease.item_id)
    assert item is not None  # the foreign key guarantees it
    return _claim_json(
        lease.id,
        item.id,
        item.external_id,
        dict(item.fields),
        lease.expires_at,
        lease.reason,
    )


@router.post("/ui/api/projects/{project}/next")
def ui_next(
    request: Request,
    project: str,
    body: NextBody,
    _: CsrfHeader,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """The member's next item: a lease the page lost, else ``claim_next``."""
    with transaction(_factory(request)) as session:
        member, found = _project(session, request, project)
        held = _held_elsewhere(session, found, member, body.have, now)
        if held is not None:
            return held
        result = claim_next(
            session=session,
            project=found,
            member=member,
            now=now,
            ttl_seconds=settings.lease_ttl_seconds,
        )
        if isinstance(result, NoAssignment):
            return {"lease_id": None, "empty": result.reason}
        if result.lease_id in body.have:  # holding the most already
            return {"lease_id": None, "empty": "holding"}
        assert isinstance(result, ClaimResult)
        return _claim_json(
            result.lease_id,
            result.item_id,
            result.external_id,
            result.fields,
            result.expires_at,
            result.reason,
        )


def _gold_feedback(
    session: Session, project: Project, annotation: Annotation
) -> dict[str, Any] | None:
    if not (project.settings or {}).get("gold_feedback"):
        return None
    provenance = annotation.provenance or {}
    if "gold_correct" not in provenance:
        return None
    item = session.get(Item, annotation.item_id)
    if item is None or item.gold_label is None:
        return None
    return {
        "correct": bool(provenance["gold_correct"]),
        "reference": decode_label(project, item.gold_label),
    }


@router.post("/ui/api/leases/{lease_id}/annotation")
def ui_submit(
    request: Request,
    lease_id: int,
    body: SubmitBody,
    _: CsrfHeader,
    now: NowDep,
    response: Response,
) -> dict[str, Any]:
    """Save the answer (``submit_annotation``); 201, or 200 on a replayed key."""
    with transaction(_factory(request)) as session:
        member = require_ui_member(request, session)
        lease = get_visible_lease(session=session, member=member, lease_id=lease_id)
        annotation, created = submit_annotation(
            session=session,
            lease_id=lease.id,
            member=member,
            label=body.label,
            time_spent_ms=body.time_spent_ms,
            idempotency_key=body.idempotency_key,
            now=now,
        )
        project = session.get(Project, lease.project_id)
        assert project is not None
        answer = {
            "id": annotation.id,
            "lease_id": annotation.lease_id,
            "item_id": annotation.item_id,
            "label": decode_label(project, annotation.label),
            "created": created,
            "gold": _gold_feedback(session, project, annotation),
        }
    response.status_code = 201 if created else 200
    return answer


@router.post("/ui/api/leases/{lease_id}/skip")
def ui_skip(
    request: Request, lease_id: int, _: CsrfHeader, now: NowDep
) -> dict[str, Any]:
    """Give the item back (``skip_lease``); it never comes back to this member."""
    with transaction(_factory(request)) as session:
        member = require_ui_member(request, session)
        lease = get_visible_lease(session=session, member=member, lease_id=lease_id)
        ended = skip_lease(session=session, lease_id=lease.id, member=member, now=now)
        return {"lease_id": ended.id, "status": ended.status}


@router.post("/ui/api/leases/{lease_id}/flag")
def ui_flag(
    request: Request, lease_id: int, body: FlagBody, _: CsrfHeader, now: NowDep
) -> dict[str, Any]:
    """Flag the item for review (``flag_lease``) with a note."""
    note = body.note.strip() if body.note and body.note.strip() else None
    with transaction(_factory(request)) as session:
        member = require_ui_member(request, session)
        lease = get_visible_lease(session=session, member=member, lease_id=lease_id)
        ended = flag_lease(
            session=session,
            lease_id=lease.id,
            member=member,
            flag=body.flag,
            note=note,
            now=now,
        )
        return {"lease_id": ended.id, "status": ended.status, "flag": ended.flag}


@router.post("/ui/api/leases/{lease_id}/renew")
def ui_renew(
    request: Request,
    lease_id: int,
    _: CsrfHeader,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """Keep a lease the page holds (``renew_lease``) while the member works on it."""
    with transaction(_factory(request)) as session:
        member = require_ui_member(request, session)
        lease = get_visible_lease(session=session, member=member, lease_id=lease_id)
        expires_at = renew_lease(
            session=session,
            lease_id=lease.id,
            member=member,
            now=now,
            ttl_seconds=settings.lease_ttl_seconds,
        )
        return {"lease_id": lease.id, "expires_at": as_utc(expires_at).isoformat()}


@router.post("/ui/api/projects/{project}/undo")
def ui_undo(
    request: Request, project: str, _: CsrfHeader, now: NowDep
) -> dict[str, Any]:
    """Take back the newest answer (``undo_last``); its item is shown again."""
    with transaction(_factory(request)) as session:
        member, found = _project(session, request, project)
        annotation = undo_last(session=session, project=found, member=member, now=now)
        lease = session.get(Lease, annotation.lease_id)
        item = session.get(Item, annotation.item_id)
        assert lease is not None and item is not None
        return {
            **_claim_json(
                lease.id,
                item.id,
                item.external_id,
                dict(item.fields),
                lease.expires_at,
                lease.reason,
            ),
            "label": decode_label(found, annotation.label),
        }


@router.get("/ui/api/projects/{project}/queue")
def ui_queue(request: Request, project: str, now: NowDep) -> dict[str, Any]:
    """The progress line's counts (``queue_status``)."""
    with read_only(_factory(request)) as session:
        member, found = _project(session, request, project)
        return queue_status(session=session, project=found, member=member, now=now)
