"""Reviewer and lead reads, and the resolve use-case.

- :func:`disputed_items`: the items a reviewer must settle. An item is
  disputed when its queue entry is complete (``done >= target``) and the
  votes differ, when a lease on it was flagged, or when an answer failed its
  gold check (provenance ``gold_correct: false``); an item with a final label
  of method ``"adjudicated"`` is settled. One aggregate query finds a page of
  them (keyset on the item id), one more loads all their answers.
- :func:`resolve_item`: a reviewer's decision. It adds an Annotation of source
  ``"review"`` (the raw votes stay) and sets the final label, method
  ``"adjudicated"``.
- :func:`dashboard`: the numbers of the lead dashboard, each from one
  aggregate query (backlog, leases, throughput, caps, agreement, latest round).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, false, func, or_, select
from sqlalchemy.orm import Session

from labelwise.exceptions import InvalidInputError, NotFoundError
from labelwise.policy import BatchPolicy, CapRule
from labelwise.service.quality import QualitySettings
from labelwise.service.queue.service import queue_status
from labelwise.service.store.labels import (
    decode_label_text,
    encode_label,
    set_final_label,
)
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Lease,
    Member,
    ModelVersion,
    Project,
    QueueEntry,
    Round,
    as_utc,
)

__all__ = [
    "ADJUDICATED",
    "Answer",
    "Dispute",
    "count_disputed",
    "dashboard",
    "disputed_items",
    "resolve_item",
]

#: FinalLabel.method of a reviewer's decision.
ADJUDICATED = "adjudicated"
#: Annotation.source of a reviewer's decision.
REVIEW_SOURCE = "review"
QUEUE_SOURCE = "queue"
FLAGGED = "flagged"
#: Largest page of disputes.
MAX_LIMIT = 200
#: Active leases listed on the dashboard.
LEASES_SHOWN = 50
_NOTE_MAX = 2000


@dataclass(frozen=True)
class Answer:
    """One answer to a disputed item: a vote, or a flag raised instead of a vote."""

    annotator: str | None
    label: Any
    created_at: datetime | None
    time_spent_ms: int | None = None
    flag: str | None = None
    note: str | None = None
    gold_correct: bool | None = None


@dataclass(frozen=True)
class Dispute:
    """A disputed item: why, its fields, every answer side by side."""

    item_id: int
    external_id: str
    role: str
    fields: dict[str, Any]
    reasons: tuple[str, ...]
    answers: tuple[Answer, ...]
    gold_label: Any = None
    labels_given: tuple[str, ...] = field(default=())
    #: The distinct answers given, as (JSON text, shown text).
    given: tuple[tuple[str, str], ...] = field(default=())


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _disputed_clause(project: Project) -> Any:
    """The SQL condition "this item is disputed and not adjudicated yet".

    Only the project's dispute rules that are on count (``QualitySettings``).
    """
    complete = exists().where(
        QueueEntry.item_id == Item.id, QueueEntry.done >= QueueEntry.target
    )
    votes = (
        select(Annotation.item_id)
        .where(Annotation.project_id == project.id, Annotation.source == QUEUE_SOURCE)
        .group_by(Annotation.item_id)
        .having(func.count(func.distinct(Annotation.label)) > 1)
    )
    flagged = exists().where(Lease.item_id == Item.id, Lease.status == FLAGGED)
    gold_failed = exists().where(
        Annotation.item_id == Item.id,
        Annotation.source == QUEUE_SOURCE,
        Annotation.provenance["gold_correct"].as_boolean().is_(False),
    )
    adjudicated = exists().where(
        FinalLabel.item_id == Item.id, FinalLabel.method == ADJUDICATED
    )
    rules = QualitySettings.of(project)
    caught = [
        clause
        for on, clause in [
            (rules.disagreement, and_(complete, Item.id.in_(votes))),
            (rules.flag, flagged),
            (rules.gold_failure, gold_failed),
        ]
        if on
    ]
    return and_(
        Item.project_id == project.id,
        or_(*caught) if caught else false(),
        ~adjudicated,
    )


def count_disputed(*, session: Session, project: Project) -> int:
    """How many items of ``project`` wait for a reviewer."""
    return int(
        session.scalar(
            select(func.count()).select_from(Item).where(_disputed_clause(project))
        )
        or 0
    )


def disputed_items(
    *,
    session: Session,
    project: Project,
    limit: int = 50,
    cursor: int | None = None,
) -> tuple[list[Dispute], int | None]:
    """A page of disputed items (by item id after ``cursor``) and the next cursor.

    Two queries whatever the page size: the page of items, then every answer
    (queue votes and flagged leases) of those items.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit:
        raise InvalidInputError(
            f"limit must be an int in [1, {MAX_LIMIT}]. Got {limit!r} instead.",
            hint="Ask for a smaller page.",
        )
    limit = min(limit, MAX_LIMIT)
    after = 0 if cursor is None else int(cursor)
    rows = session.execute(
        select(Item.id, Item.external_id, Item.role, Item.fields, Item.gold_label)
        .where(_disputed_clause(project), Item.id > after)
        .order_by(Item.id)
        .limit(limit + 1)
    ).all()
    page = rows[:limit]
    ids = [row[0] for row in page]
    answers: dict[int, list[Answer]] = {item_id: [] for item_id in ids}
    if ids:
        votes = session.execute(
            select(
                Annotation.item_id,
                Member.name,
                Annotation.label,
                Annotation.created_at,
                Annotation.time_spent_ms,
                Annotation.flag,
                Annotation.note,
                Annotation.provenance,
            )
            .outerjoin(Member, Member.id == Annotation.member_id)
            .where(Annotation.item_id.in_(ids), Annotation.source == QUEUE_SOURCE)
            .order_by(Annotation.item_id, Annotation.id)
        )
        for item_id, name, label, at, spent, flag, note, provenance in votes:
            correct = (provenance or {}).get("gold_correct")
            answers[item_id].append(
                Answer(
                    annotator=name,
                    label=decode_label_text(label),
                    created_at=as_utc(at),
                    time_spent_ms=spent,
                    flag=flag,
                    note=note,
                    gold_correct=None if correct is None else bool(correct),
                )
            )
        flags = session.execute(
            select(
                Lease.item_id, Member.name, Lease.finished_at, Lease.flag, Lease.note
            )
            .join(Member, Member.id == Lease.member_id)
            .where(Lease.item_id.in_(ids), Lease.status == FLAGGED)
            .order_by(Lease.item_id, Lease.id)
        )
        for item_id, name, at, flag, note in flags:
            answers[item_id].append(
                Answer(
                    annotator=name,
                    label=None,
                    created_at=as_utc(at),
                    flag=flag or "other",
                    note=note,
                )
            )
    disputes = []
    for item_id, external_id, role, fields, gold_label in page:
        given = answers[item_id]
        labels = sorted({_shown(a.label) for a in given if a.label is not None})
        reasons = []
        rules = QualitySettings.of(project)
        if rules.disagreement and len(labels) > 1:
            reasons.append("disagreement")
        if rules.flag and any(a.flag for a in given):
            reasons.append("flagged")
        if rules.gold_failure and any(a.gold_correct is False for a in given):
            reasons.append("gold_failed")
        disputes.append(
            Dispute(
                item_id=item_id,
                external_id=external_id,
                role=role,
                fields=dict(fields or {}),
                reasons=tuple(reasons),
                answers=tuple(given),
                gold_label=decode_label_text(gold_label),
                labels_given=tuple(labels),
                given=tuple(
                    sorted(
                        {
                            (json.dumps(a.label), _shown(a.label))
                            for a in given
                            if a.label is not None
                        }
                    )
                ),
            )
        )
    following = page[-1][0] if len(rows) > limit and page else None
    return disputes, following


def resolve_item(
    *,
    session: Session,
    project: Project,
    item_id: int,
    label: object,
    reviewer: Member,
    note: str | None = None,
) -> FinalLabel:
    """Settle an item: a ``review`` annotation plus the final label, ``adjudicated``.

    The annotators' raw votes are kept. ``label`` must be a project label (a
    list of them for multi-label projects).
    """
    item = session.get(Item, item_id)
    if item is None or item.project_id != project.id:
        raise NotFoundError(
            f"Item id {item_id!r} is not an item of project {project.name!r}.",
            hint="Reload the review page and pick an item listed there.",
        )
    if note is not None:
        note = note.strip() or None
        if note is not None and len(note) > _NOTE_MAX:
            raise InvalidInputError(
                f"A review note must be at most {_NOTE_MAX} characters. Got "
                f"{len(note)}.",
                hint="Shorten the note; link to a longer write-up instead.",
            )
    encoded = encode_label(project, label)
    votes = int(
        session.scalar(
            select(func.count())
            .select_from(Annotation)
            .where(Annotation.item_id == item.id, Annotation.source == QUEUE_SOURCE)
        )
        or 0
    )
    session.add(
        Annotation(
            project_id=project.id,
            item_id=item.id,
            member_id=reviewer.id,
            label=encoded,
            source=REVIEW_SOURCE,
            provenance={},
            note=note,
        )
    )
    session.flush()
    return set_final_label(
        session=session,
        item=item,
        label=json.loads(encoded),
        method=ADJUDICATED,
        confidence=None,
        n_annotations=votes,
    )


# ------------------------------------------------------------------ the dashboard


def _day_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def _latest_round(session: Session, project: Project) -> dict[str, Any] | None:
    row = session.execute(
        select(
            Round.number,
            Round.policy_version,
            Round.policy,
            Round.mode,
            Round.batch_size,
            Round.counts_by_reason,
            Round.created_at,
            ModelVersion.version,
        )
        .outerjoin(ModelVersion, ModelVersion.id == Round.model_version_id)
        .where(Round.project_id == project.id)
        .order_by(Round.number.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    number, version, policy, mode, batch_size, counts, at, model_version = row
    mix = sorted(
        ((str(reason), int(n)) for reason, n in (counts or {}).items()),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return {
        "number": number,
        "policy_version": version,
        "policy_name": (policy or {}).get("name"),
        "policy": policy or {},
        "mode": mode,
        "batch_size": batch_size,
        "created_at": as_utc(at),
        "model_version": model_version,
        "mix": mix,
        "mix_total": sum(n for _, n in mix),
    }


def _throughput(
    session: Session, project: Project, now: datetime
) -> list[dict[str, Any]]:
    """Per annotator: items, items/hour of labeling time, median seconds per item."""
    day = _day_start(now)
    week = day - timedelta(days=day.weekday())
    rows = session.execute(
        select(Member.name, Annotation.created_at, Annotation.time_spent_ms)
        .join(Member, Member.id == Annotation.member_id)
        .where(
            Annotation.project_id == project.id,
            Annotation.source == QUEUE_SOURCE,
            Annotation.created_at >= week,
        )
    ).all()
    spans: dict[str, dict[str, list[int | None]]] = {}
    for name, at, spent in rows:
        windows = spans.setdefault(name, {"today": [], "week": []})
        windows["week"].append(spent)
        moment = as_utc(at)
        if moment is not None and moment >= day:
            windows["today"].append(spent)
    result = []
    for name in sorted(spans):
        entry: dict[str, Any] = {"annotator": name}
        for window, times in spans[name].items():
            known = [t for t in times if t is not None]
            total_ms = sum(known)
            entry[window] = {
                "items": len(times),
                "items_per_hour": (
                    round(len(known) * 3_600_000 / total_ms, 1) if total_ms else None
                ),
                "median_seconds": (
                    round(statistics.median(known) / 1000, 1) if known else None
                ),
            }
        result.append(entry)
    return result


def _caps(
    session: Session, project: Project, now: datetime, policy: dict[str, Any] | None
) -> dict[str, Any]:
    caps = CapRule() if policy is None else BatchPolicy.from_dict(policy).caps
    hard = sorted(CapRule.HARD_REASONS)
    rows = session.execute(
        select(
            Member.name,
            func.sum(case((Lease.reason.in_(hard), 1), else_=0)),
            func.count(),
        )
        .join(Member, Member.id == Lease.member_id)
        .where(Lease.project_id == project.id, Lease.created_at >= _day_start(now))
        .group_by(Member.name)
        .order_by(Member.name)
    ).all()
    return {
        "max_hard_per_day": caps.max_hard_per_day,
        "min_normal_share": caps.min_normal_share,
        "members": [
            {
                "annotator": name,
                "hard_today": int(n_hard or 0),
                "total_today": int(total),
                "at_cap": caps.max_hard_per_day is not None
                and int(n_hard or 0) >= caps.max_hard_per_day,
            }
            for name, n_hard, total in rows
        ],
    }


def _agreement(session: Session, project: Project) -> dict[str, Any]:
    """Share of complete overlap items (target >= 2) whose queue votes all agree."""
    complete = (
        select(QueueEntry.item_id)
        .where(
            QueueEntry.project_id == project.id,
            QueueEntry.target >= 2,
            QueueEntry.done >= QueueEntry.target,
        )
        .distinct()
    )
    per_item = (
        select(
            Annotation.item_id,
            func.count(func.distinct(Annotation.label)).label("distinct_labels"),
        )
        .where(Annotation.source == QUEUE_SOURCE, Annotation.item_id.in_(complete))
        .group_by(Annotation.item_id)
        .subquery()
    )
    total, agreed = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((per_item.c.distinct_labels == 1, 1), else_=0)), 0
            ),
        ).select_from(per_item)
    ).one()
    total, agreed = int(total), int(agreed)
    return {
        "complete": total,
        "agreed": agreed,
        "share": round(agreed / total, 3) if total else None,
    }


def _leases(session: Session, project: Project, now: datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Member.name, Item.external_id, Lease.reason, Lease.expires_at)
        .join(Member, Member.id == Lease.member_id)
        .join(Item, Item.id == Lease.item_id)
        .where(
            Lease.project_id == project.id,
            Lease.status == "active",
            Lease.expires_at > now,
        )
        .order_by(Lease.expires_at, Lease.id)
        .limit(LEASES_SHOWN)
    ).all()
    return [
        {
            "annotator": name,
            "external_id": external_id,
            "reason": reason,
            "expires_at": as_utc(expires_at),
        }
        for name, external_id, reason, expires_at in rows
    ]


def dashboard(*, session: Session, project: Project, now: datetime) -> dict[str, Any]:
    """Every number of the lead dashboard of ``project`` at ``now`` (aware UTC)."""
    if now.utcoffset() is None:
        raise InvalidInputError(
            f"now must be a timezone-aware datetime. Got {now!r} instead.",
            hint="Pass datetime.now(timezone.utc).",
        )
    now = now.astimezone(UTC)
    latest = _latest_round(session, project)
    return {
        "backlog": queue_status(session=session, project=project, now=now),
        "disputed": count_disputed(session=session, project=project),
        "leases": _leases(session, project, now),
        "throughput": _throughput(session, project, now),
        "caps": _caps(
            session, project, now, None if latest is None else latest["policy"]
        ),
        "agreement": _agreement(session, project),
        "latest_round": latest,
    }
