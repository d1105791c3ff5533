"""Quality settings of a project, and re-deciding every queue item under them.

:func:`reaggregate` re-routes every pool item that has queue votes: items now
caught by a dispute rule lose their queue final label (and wait for a
reviewer), the others get one by the project's aggregation method. With
``dawid_skene`` one EM fit over all the project's queue votes gives every
complete, undisputed item its label and posterior. Reviewers' decisions
(``adjudicated``) and seed labels are never touched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from labelwise.service.quality._rules import (
    QUEUE_METHODS,
    Decision,
    QualitySettings,
    decide_item,
)
from labelwise.service.store.labels import decode_label, set_final_label
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Item,
    Lease,
    Project,
    QueueEntry,
)

__all__ = [
    "AggregationSummary",
    "reaggregate",
    "refresh_before_round",
    "update_quality_settings",
]

_QUEUE = "queue"
_FLAGGED = "flagged"


@dataclass(frozen=True)
class AggregationSummary:
    """What :func:`reaggregate` did, per outcome."""

    method: str
    final: int
    review: int
    waiting: int
    kept: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "method": self.method,
            "final": self.final,
            "review": self.review,
            "waiting": self.waiting,
            "kept": self.kept,
        }


def update_quality_settings(
    *, session: Session, project: Project, changes: dict[str, Any]
) -> QualitySettings:
    """Merge ``changes`` (the JSON form, partial) into the project's settings.

    The items are re-decided at once (:func:`reaggregate`), so the reviewer
    queue and the training set follow the new rules.
    """
    current = QualitySettings.of(project).to_dict()
    rules = {**current["dispute_rules"], **(changes.get("dispute_rules") or {})}
    merged = {**current, **changes, "dispute_rules": rules}
    settings = QualitySettings.from_dict(merged)
    project.settings = settings.stored_in(project.settings)
    session.flush()
    reaggregate(session=session, project=project)
    return settings


def _votes(
    session: Session, project: Project
) -> tuple[dict[int, list[tuple[int | None, str, str]]], dict[int, list[str]]]:
    votes: dict[int, list[tuple[int | None, str, str]]] = defaultdict(list)
    for item_id, member_id, label, flag in session.execute(
        select(
            Annotation.item_id, Annotation.member_id, Annotation.label, Annotation.flag
        )
        .join(Item, Item.id == Annotation.item_id)
        .where(
            Annotation.project_id == project.id,
            Annotation.source == _QUEUE,
            Item.role != "gold",
        )
        .order_by(Annotation.id)
    ):
        votes[item_id].append((member_id, label, flag or ""))
    flags: dict[int, list[str]] = defaultdict(list)
    for item_id, flag in session.execute(
        select(Lease.item_id, Lease.flag).where(
            Lease.project_id == project.id, Lease.status == _FLAGGED
        )
    ):
        flags[item_id].append(flag or "other")
    return votes, flags


def _dawid_skene(
    votes: dict[int, list[tuple[int | None, str, str]]], items: list[int]
) -> dict[int, tuple[str, float]]:
    """Dawid–Skene labels and posteriors of ``items`` from every queue vote."""
    from labelwise.quality import dawid_skene

    rows = [
        (item_id, -1 if member is None else member, label)
        for item_id, given in votes.items()
        for member, label, _ in given
    ]
    if not rows or not items:
        return {}
    frame = pd.DataFrame(rows, columns=["item", "annotator", "label"])
    fitted = dawid_skene(frame).labels
    labels = dict(zip(fitted["item"], fitted["label"], strict=True))
    confidences = dict(
        zip(fitted["item"], fitted["confidence"].astype(float), strict=True)
    )
    return {
        item_id: (str(labels[item_id]), float(confidences[item_id]))
        for item_id in items
    }


def reaggregate(*, session: Session, project: Project) -> AggregationSummary:
    """Re-decide every pool item with queue votes under the project's settings."""
    settings = QualitySettings.of(project)
    votes, flags = _votes(session, project)
    targets = dict(
        session.execute(
            select(QueueEntry.item_id, func.max(QueueEntry.target))
            .where(QueueEntry.project_id == project.id)
            .group_by(QueueEntry.item_id)
        ).all()
    )
    protected = dict(
        session.execute(
            select(FinalLabel.item_id, FinalLabel.method).where(
                FinalLabel.project_id == project.id,
                FinalLabel.method.not_in(QUEUE_METHODS),
            )
        ).all()
    )
    decisions: dict[int, Decision] = {}
    for item_id, given in votes.items():
        if item_id in protected:
            continue
        decisions[item_id] = decide_item(
            project,
            item_id,
            [label for _, label, _ in given],
            flags=[flag for _, _, flag in given] + flags.get(item_id, []),
            target=int(targets.get(item_id) or 1),
        )
    final = [i for i, d in decisions.items() if d.kind == "final" and d.label]
    fitted = _dawid_skene(votes, final) if settings.aggregation == "dawid_skene" else {}
    items = (
        {
            item.id: item
            for item in session.scalars(select(Item).where(Item.id.in_(final)))
        }
        if final
        else {}
    )
    for item_id in final:
        decision = decisions[item_id]
        label, confidence = fitted.get(
            item_id, (str(decision.label), float(decision.confidence or 0.0))
        )
        method = "dawid_skene" if item_id in fitted else str(decision.method)
        set_final_label(
            session=session,
            item=items[item_id],
            label=decode_label(project, label),
            method=method,
            confidence=min(1.0, max(0.0, confidence)),
            n_annotations=len(votes[item_id]),
        )
    cleared = [i for i, d in decisions.items() if d.kind != "final"]
    for start in range(0, len(cleared), 5000):
        session.execute(
            delete(FinalLabel).where(
                FinalLabel.item_id.in_(cleared[start : start + 5000]),
                FinalLabel.method.in_(QUEUE_METHODS),
            ),
            execution_options={"synchronize_session": False},
        )
    kinds = [d.kind for d in decisions.values()]
    return AggregationSummary(
        method=settings.aggregation,
        final=len(final),
        review=kinds.count("review"),
        waiting=kinds.count("wait"),
        kept=len(protected.keys() & votes.keys()),
    )


def refresh_before_round(*, session: Session, project: Project) -> None:
    """Refit Dawid–Skene over all votes before a round trains (majority: no-op).

    Majority labels are exact as soon as an item's votes are in; Dawid–Skene
    labels depend on every annotator's confusion matrix, so ``run_round``
    refits them once per round, before reading the training set.
    """
    if QualitySettings.of(project).aggregation == "dawid_skene":
        reaggregate(session=session, project=project)
