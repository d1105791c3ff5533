"""Calibration sessions: 20 to 50 tough items every annotator labels blind.

A lead creates a session from items chosen by hand or by a rule
(``most_disputed``: the items whose queue votes split most;
``most_uncertain``: the latest rounds' ``uncertain`` picks with the highest
scores). Every annotator and reviewer of the project answers each item once,
seeing only the item (never another person's answer). Answers are kept in
``calibration_answers`` and never become annotations or final labels. The
report gives the agreement figures of the answers and the items that split
people; closing the session may publish a new guideline version.

Every function takes the session keyword-only and never commits.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labelwise._typing import RandomState
from labelwise.exceptions import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDenied,
)
from labelwise.service.quality import agreement_figures
from labelwise.service.queue.rules import calibration_items, disagreement
from labelwise.service.store.labels import encode_label
from labelwise.service.store.projects import add_guideline, current_guideline
from labelwise.service.store.schema import (
    Annotation,
    CalibrationAnswer,
    CalibrationItem,
    CalibrationSession,
    Guideline,
    Item,
    Member,
    Project,
    ProjectMember,
    Round,
    Selection,
    as_utc,
    utcnow,
)

__all__ = [
    "ANSWER_ROLES",
    "MAX_SIZE",
    "MIN_SIZE",
    "RULES",
    "answer_item",
    "close_session",
    "create_session",
    "export_quality",
    "get_session",
    "list_sessions",
    "next_item",
    "session_report",
    "sidecar_path",
    "write_quality_sidecar",
]

#: Items in a session.
MIN_SIZE, MAX_SIZE = 20, 50
#: How a session's items are chosen.
RULES = ("manual", "most_disputed", "most_uncertain")
#: Roles that answer a session (leads and admins run it).
ANSWER_ROLES = ("annotator", "reviewer")
OPEN, CLOSED = "open", "closed"
_NAME_MAX = 200
_TEXT_MAX = 200_000


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def _shown(text: str) -> str:
    value = json.loads(text)
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _size_error(what: str, n: int) -> InvalidInputError:
    return InvalidInputError(
        f"A calibration session needs {MIN_SIZE} to {MAX_SIZE} items. {what} {n}.",
        hint=f"Pick between {MIN_SIZE} and {MAX_SIZE} items by hand, or use a rule "
        "(most_disputed, most_uncertain) once enough items qualify.",
    )


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise _size_error("Got size", size)  # type: ignore[arg-type]
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise _size_error("Got size", size)
    return size


def _manual(session: Session, project: Project, item_ids: list[int]) -> list[int]:
    if len(set(item_ids)) != len(item_ids):
        repeated = sorted({i for i in item_ids if item_ids.count(i) > 1})
        raise InvalidInputError(
            f"Each item may appear once in a calibration session. Got "
            f"{', '.join(map(str, repeated))} more than once.",
            hint="Remove the repeated item ids.",
        )
    if not MIN_SIZE <= len(item_ids) <= MAX_SIZE:
        raise _size_error("Got", len(item_ids))
    found = set(
        session.scalars(
            select(Item.id).where(Item.project_id == project.id, Item.id.in_(item_ids))
        )
    )
    missing = [i for i in item_ids if i not in found]
    if missing:
        raise NotFoundError(
            f"Item id(s) {', '.join(map(str, missing[:10]))} are not items of "
            f"project {project.name!r}.",
            hint="Use the ids of GET /projects/{project}/items.",
        )
    return item_ids


def _external(session: Session, project: Project, external_ids: list[str]) -> list[int]:
    rows = dict(
        session.execute(
            select(Item.external_id, Item.id).where(
                Item.project_id == project.id, Item.external_id.in_(external_ids)
            )
        ).all()
    )
    missing = [e for e in external_ids if e not in rows]
    if missing:
        raise NotFoundError(
            f"Item(s) {', '.join(map(repr, missing[:10]))} are not items of "
            f"project {project.name!r}.",
            hint="Use the external ids the items were imported with.",
        )
    return [int(rows[e]) for e in external_ids]


def _most_disputed(
    session: Session, project: Project, size: int, rng: RandomState
) -> list[int]:
    votes: dict[int, list[str]] = defaultdict(list)
    for item_id, label in session.execute(
        select(Annotation.item_id, Annotation.label).where(
            Annotation.project_id == project.id, Annotation.source == "queue"
        )
    ):
        votes[item_id].append(label)
    scores = {i: disagreement(v) for i, v in votes.items() if len(v) >= 2}
    return calibration_items(scores, size=size, rng=rng)


def _most_uncertain(session: Session, project: Project, size: int) -> list[int]:
    chosen: list[int] = []
    rows = session.execute(
        select(Selection.item_id)
        .join(Round, Round.id == Selection.round_id)
        .where(
            Round.project_id == project.id,
            Selection.reason == "uncertain",
            Selection.score.is_not(None),
        )
        .order_by(Round.number.desc(), Selection.score.desc(), Selection.item_id)
        .limit(size * 4)
    )
    for (item_id,) in rows:
        if item_id not in chosen:
            chosen.append(item_id)
        if len(chosen) == size:
            break
    return chosen


def create_session(
    *,
    session: Session,
    project: Project,
    creator: Member | None,
    name: str,
    item_ids: list[int] | None = None,
    external_ids: list[str] | None = None,
    rule: str | None = None,
    size: int = 30,
    rng: RandomState = None,
) -> CalibrationSession:
    """A new open session over explicit items, or over ``size`` items by ``rule``."""
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > _NAME_MAX:
        raise InvalidInputError(
            f"A calibration session needs a name of 1 to {_NAME_MAX} characters. "
            f"Got {name!r}.",
            hint="Name it after what it calibrates, e.g. 'billing vs account'.",
        )
    given = sum(x is not None for x in (item_ids, external_ids, rule))
    if given != 1:
        raise InvalidInputError(
            "A calibration session is built from exactly one of: item_ids, "
            f"external_ids or a rule. Got {given}.",
            hint="Pass item ids chosen by hand, or rule=most_disputed or "
            "rule=most_uncertain with a size.",
        )
    if rule is not None:
        if rule not in RULES[1:]:
            raise InvalidInputError(
                f"A calibration rule must be one of {', '.join(RULES[1:])}. Got "
                f"{rule!r} instead.",
                hint="Pick most_disputed or most_uncertain, or choose items by hand.",
            )
        size = _check_size(size)
        ids = (
            _most_disputed(session, project, size, rng)
            if rule == "most_disputed"
            else _most_uncertain(session, project, size)
        )
        if len(ids) < MIN_SIZE:
            raise _size_error(f"Rule {rule!r} found only", len(ids))
    elif external_ids is not None:
        ids = _manual(session, project, _external(session, project, external_ids))
        rule = "manual"
    else:
        ids = _manual(session, project, [int(i) for i in item_ids or []])
        rule = "manual"
    guideline = current_guideline(session=session, project=project)
    row = CalibrationSession(
        project_id=project.id,
        name=name,
        rule=rule,
        status=OPEN,
        guideline_version=None if guideline is None else guideline.version,
        created_by=None if creator is None else creator.id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    session.add_all(
        CalibrationItem(session_id=row.id, item_id=item_id, position=n)
        for n, item_id in enumerate(ids)
    )
    session.flush()
    return row


def get_session(
    *, session: Session, project: Project, session_id: int
) -> CalibrationSession:
    """The session ``session_id`` of ``project`` (NotFoundError otherwise)."""
    row = session.get(CalibrationSession, session_id)
    if row is None or row.project_id != project.id:
        raise NotFoundError(
            f"Calibration session {session_id!r} is not a session of project "
            f"{project.name!r}.",
            hint="List the sessions: GET /api/v1/projects/{project}/calibration.",
        )
    return row


def _counts(session: Session, ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    items = dict(
        session.execute(
            select(CalibrationItem.session_id, func.count())
            .where(CalibrationItem.session_id.in_(ids))
            .group_by(CalibrationItem.session_id)
        ).all()
    )
    answers = dict(
        session.execute(
            select(CalibrationAnswer.session_id, func.count())
            .where(CalibrationAnswer.session_id.in_(ids))
            .group_by(CalibrationAnswer.session_id)
        ).all()
    )
    return items, answers


def _public(row: CalibrationSession, n_items: int, n_answers: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "rule": row.rule,
        "status": row.status,
        "n_items": n_items,
        "n_answers": n_answers,
        "guideline_version": row.guideline_version,
        "published_guideline_version": row.published_guideline_version,
        "created_at": _iso(row.created_at),
        "closed_at": _iso(row.closed_at),
    }


def list_sessions(
    *, session: Session, project: Project, member: Member | None = None
) -> list[dict[str, Any]]:
    """The project's sessions, newest first; ``my_answers`` when ``member`` is given.

    An annotator or reviewer (``member``) sees only the open sessions, with how
    many items they answered, never other people's answers.
    """
    query = select(CalibrationSession).where(
        CalibrationSession.project_id == project.id
    )
    answering = member is not None and member.role in ANSWER_ROLES
    if answering:
        query = query.where(CalibrationSession.status == OPEN)
    rows = list(session.scalars(query.order_by(CalibrationSession.id.desc())))
    ids = [row.id for row in rows]
    items, answers = _counts(session, ids)
    mine: dict[int, int] = {}
    if member is not None and ids:
        mine = dict(
            session.execute(
                select(CalibrationAnswer.session_id, func.count())
                .where(
                    CalibrationAnswer.session_id.in_(ids),
                    CalibrationAnswer.member_id == member.id,
                )
                .group_by(CalibrationAnswer.session_id)
            ).all()
        )
    result = []
    for row in rows:
        entry = _public(row, items.get(row.id, 0), answers.get(row.id, 0))
        if answering:
            entry.pop("n_answers")
        if member is not None:
            entry["my_answers"] = mine.get(row.id, 0)
        result.append(entry)
    return result


def _check_answerer(cal: CalibrationSession, member: Member) -> None:
    if member.role not in ANSWER_ROLES:
        raise PermissionDenied(
            f"Calibration sessions are answered by the roles "
            f"{', '.join(ANSWER_ROLES)}. Member {member.name!r} has the role "
            f"{member.role!r}.",
            hint="Leads run the session and read its report instead.",
        )
    if cal.status != OPEN:
        raise ConflictError(
            f"Calibration session {cal.id} ({cal.name!r}) is closed; it takes no "
            "more answers.",
            hint="Ask your lead to open a new session.",
        )


def next_item(
    *, session: Session, cal: CalibrationSession, member: Member
) -> dict[str, Any] | None:
    """The member's first unanswered item of the session, or None when done.

    Only the item and the member's progress: never another person's answer.
    """
    _check_answerer(cal, member)
    answered = select(CalibrationAnswer.item_id).where(
        CalibrationAnswer.session_id == cal.id,
        CalibrationAnswer.member_id == member.id,
    )
    row = session.execute(
        select(CalibrationItem.position, Item.id, Item.external_id, Item.fields)
        .join(Item, Item.id == CalibrationItem.item_id)
        .where(
            CalibrationItem.session_id == cal.id,
            CalibrationItem.item_id.not_in(answered),
        )
        .order_by(CalibrationItem.position)
        .limit(1)
    ).first()
    total = int(
        session.scalar(select(func.count()).where(CalibrationItem.session_id == cal.id))
        or 0
    )
    done = int(
        session.scalar(
            select(func.count()).where(
                CalibrationAnswer.session_id == cal.id,
                CalibrationAnswer.member_id == member.id,
            )
        )
        or 0
    )
    if row is None:
        return None
    position, item_id, external_id, fields = row
    return {
        "session_id": cal.id,
        "item": {"id": item_id, "external_id": external_id, "fields": fields or {}},
        "position": int(position) + 1,
        "answered": done,
        "total": total,
    }


def answer_item(
    *,
    session: Session,
    project: Project,
    cal: CalibrationSession,
    member: Member,
    item_id: int,
    label: object,
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> CalibrationAnswer:
    """Record the member's blind answer to one item of an open session (once)."""
    _check_answerer(cal, member)
    in_session = session.scalar(
        select(CalibrationItem.id).where(
            CalibrationItem.session_id == cal.id, CalibrationItem.item_id == item_id
        )
    )
    if in_session is None:
        raise NotFoundError(
            f"Item id {item_id!r} is not an item of calibration session {cal.id}.",
            hint="Answer the item GET …/calibration/{session}/next returned.",
        )
    if time_spent_ms is not None and (
        isinstance(time_spent_ms, bool)
        or not isinstance(time_spent_ms, int)
        or not 0 <= time_spent_ms <= 86_400_000
    ):
        raise InvalidInputError(
            "time_spent_ms must be an int from 0 to 86400000 (one day). Got "
            f"{time_spent_ms!r} instead.",
            hint="Send the milliseconds the item was shown, or leave it out.",
        )
    answer = CalibrationAnswer(
        session_id=cal.id,
        item_id=item_id,
        member_id=member.id,
        label=encode_label(project, label),
        time_spent_ms=time_spent_ms,
        created_at=now or utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(answer)
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            f"Member {member.name!r} already answered item {item_id} of calibration "
            f"session {cal.id}; each person answers each item once.",
            hint="Go on with the next item (GET …/next).",
        ) from exc
    return answer


def _answers_frame(session: Session, cal: CalibrationSession) -> pd.DataFrame:
    rows = session.execute(
        select(CalibrationAnswer.item_id, Member.name, CalibrationAnswer.label)
        .join(Member, Member.id == CalibrationAnswer.member_id)
        .where(CalibrationAnswer.session_id == cal.id)
        .order_by(CalibrationAnswer.id)
    ).all()
    return pd.DataFrame(
        {
            "item": [r[0] for r in rows],
            "annotator": [r[1] for r in rows],
            "label": [_shown(r[2]) for r in rows],
        }
    )


def _participants(session: Session, project: Project, cal: CalibrationSession) -> Any:
    counts = dict(
        session.execute(
            select(Member.name, func.count())
            .join(CalibrationAnswer, CalibrationAnswer.member_id == Member.id)
            .where(CalibrationAnswer.session_id == cal.id)
            .group_by(Member.name)
        ).all()
    )
    expected = set(
        session.scalars(
            select(Member.name)
            .join(ProjectMember, ProjectMember.member_id == Member.id)
            .where(
                ProjectMember.project_id == project.id,
                Member.role.in_(ANSWER_ROLES),
                Member.active.is_(True),
            )
        )
    )
    return [
        {"annotator": name, "answered": int(counts.get(name, 0))}
        for name in sorted(expected | set(counts))
    ]


def session_report(
    *, session: Session, project: Project, cal: CalibrationSession
) -> dict[str, Any]:
    """The session, its agreement figures, who answered, and the items that split.

    ``items`` lists every item with its answer counts per label and its
    disagreement (the share of answers that differ from the most common one),
    most split first; ``split_items`` counts those with two labels or more.
    """
    frame = _answers_frame(session, cal)
    items = session.execute(
        select(CalibrationItem.position, Item.id, Item.external_id, Item.fields)
        .join(Item, Item.id == CalibrationItem.item_id)
        .where(CalibrationItem.session_id == cal.id)
        .order_by(CalibrationItem.position)
    ).all()
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    for item_id, label in zip(frame["item"], frame["label"], strict=True):
        votes[int(item_id)][label] += 1
    text_field = project.text_field
    listed = []
    for position, item_id, external_id, fields in items:
        counts = votes.get(item_id, Counter())
        given = list(counts.elements())
        listed.append(
            {
                "item_id": item_id,
                "external_id": external_id,
                "position": int(position) + 1,
                "text": str((fields or {}).get(text_field, ""))[:300]
                if text_field
                else None,
                "answers": dict(sorted(counts.items())),
                "n_answers": len(given),
                "disagreement": round(disagreement(given), 6),
                "split": len(counts) > 1,
            }
        )
    listed.sort(key=lambda entry: (-entry["disagreement"], entry["position"]))
    n_items, n_answers = len(items), len(frame)
    return {
        **_public(cal, n_items, n_answers),
        "agreement": agreement_figures(frame),
        "participants": _participants(session, project, cal),
        "split_items": sum(entry["split"] for entry in listed),
        "items": listed,
    }


def close_session(
    *,
    session: Session,
    project: Project,
    cal: CalibrationSession,
    member: Member,
    guideline: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> CalibrationSession:
    """Close an open session; with ``guideline`` text, publish it as a new version."""
    if cal.status != OPEN:
        raise ConflictError(
            f"Calibration session {cal.id} ({cal.name!r}) is already closed.",
            hint="Create a new session to calibrate again.",
        )
    if guideline is not None:
        if not guideline.strip() or len(guideline) > _TEXT_MAX:
            raise InvalidInputError(
                f"A guideline published on closing must be 1 to {_TEXT_MAX} "
                f"characters. Got {len(guideline)}.",
                hint="Leave it out to close without a new guideline version.",
            )
        version = add_guideline(
            session=session,
            project=project,
            text=guideline,
            note=note or f"Calibration session {cal.id}: {cal.name}",
            member_id=member.id,
        ).version
        cal.published_guideline_version = version
    cal.status = CLOSED
    cal.note = note
    cal.closed_at = now or utcnow()
    session.flush()
    return cal


def export_quality(*, session: Session, project: Project) -> dict[str, Any]:
    """Every guideline version and calibration session (with answers) as JSON."""
    guidelines = [
        {
            "version": g.version,
            "text": g.text,
            "note": g.note,
            "created_at": _iso(g.created_at),
        }
        for g in session.scalars(
            select(Guideline)
            .where(Guideline.project_id == project.id)
            .order_by(Guideline.version)
        )
    ]
    sessions = []
    for row in session.scalars(
        select(CalibrationSession)
        .where(CalibrationSession.project_id == project.id)
        .order_by(CalibrationSession.id)
    ):
        report = session_report(session=session, project=project, cal=row)
        answers = [
            {
                "external_id": external_id,
                "annotator": name,
                "label": json.loads(label),
                "created_at": _iso(at),
            }
            for external_id, name, label, at in session.execute(
                select(
                    Item.external_id,
                    Member.name,
                    CalibrationAnswer.label,
                    CalibrationAnswer.created_at,
                )
                .join(Item, Item.id == CalibrationAnswer.item_id)
                .join(Member, Member.id == CalibrationAnswer.member_id)
                .where(CalibrationAnswer.session_id == row.id)
                .order_by(CalibrationAnswer.id)
            )
        ]
        sessions.append(
            {
                **{k: report[k] for k in _public(row, 0, 0)},
                "note": row.note,
                "agreement": report["agreement"],
                "items": [
                    entry["external_id"]
                    for entry in sorted(report["items"], key=lambda e: e["position"])
                ],
                "answers": answers,
            }
        )
    return {"project": project.name, "guidelines": guidelines, "sessions": sessions}


def sidecar_path(out: str | os.PathLike[str]) -> Path:
    """Where an export to ``out`` puts its guidelines and sessions: OUT.quality.json."""
    target = Path(out)
    return target.with_name(target.name + ".quality.json")


def write_quality_sidecar(
    *, session: Session, project: Project, out: str | os.PathLike[str]
) -> Path:
    """Write :func:`export_quality` next to an export (atomically); its path."""
    path = sidecar_path(out)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(
            json.dumps(export_quality(session=session, project=project), indent=2),
            encoding="utf-8",
        )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
