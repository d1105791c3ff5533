"""Agreement of a project's stored queue answers, and each annotator's quality.

:func:`project_agreement` reads every queue answer of a project into a long
table (item, annotator, label, reason, week, guideline version, final label)
and computes the figures of :func:`labelwise.quality.agreement_report`, overall
and per selection reason, per final label, per ISO week and per guideline
version. :func:`annotator_quality` gives leads each annotator's gold accuracy,
agreement with the final labels, time per item and flags.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelwise.service.store.labels import decode_label_text
from labelwise.service.store.schema import (
    Annotation,
    FinalLabel,
    Lease,
    Member,
    Project,
    as_utc,
)

__all__ = [
    "BREAKDOWNS",
    "FIGURES",
    "agreement_figures",
    "annotator_quality",
    "answers_frame",
    "project_agreement",
]

#: The keys of one set of agreement figures.
FIGURES = (
    "n_items",
    "n_annotators",
    "n_labels",
    "percent_agreement",
    "fleiss_kappa",
    "krippendorff_alpha",
    "mean_pairwise_cohen_kappa",
)
#: Breakdown key -> the column it groups by.
BREAKDOWNS = {
    "by_reason": "reason",
    "by_label": "final_label",
    "by_week": "week",
    "by_guideline_version": "guideline_version",
}
_QUEUE = "queue"
_ADJUDICATED = "adjudicated"


def _shown(text: str | None) -> str:
    """A stored label as people read it: ``bug``, or ``a, b`` for a list."""
    if text is None:
        return ""
    value = decode_label_text(text)
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _week(moment: datetime) -> str:
    year, week, _ = as_utc(moment).isocalendar()
    return f"{year}-W{week:02d}"


def answers_frame(*, session: Session, project: Project) -> pd.DataFrame:
    """Every queue answer of ``project`` in long format, one row per answer.

    Columns: ``item`` (item id), ``annotator`` (member name), ``label`` (as
    shown), ``reason`` (selection reason or ``gold``), ``week`` (ISO week of
    the answer, UTC), ``guideline_version`` (``v3``, or ``none``),
    ``final_label`` (the item's final label, or ``none``) and ``created_at``.
    """
    rows = session.execute(
        select(
            Annotation.item_id,
            Member.name,
            Annotation.label,
            Annotation.reason,
            Annotation.created_at,
            Annotation.guideline_version,
            FinalLabel.label,
        )
        .outerjoin(Member, Member.id == Annotation.member_id)
        .outerjoin(FinalLabel, FinalLabel.item_id == Annotation.item_id)
        .where(Annotation.project_id == project.id, Annotation.source == _QUEUE)
        .order_by(Annotation.id)
    ).all()
    return pd.DataFrame(
        {
            "item": [r[0] for r in rows],
            "annotator": [r[1] or "(deleted)" for r in rows],
            "label": [_shown(r[2]) for r in rows],
            "reason": [r[3] or "none" for r in rows],
            "week": [_week(r[4]) for r in rows],
            "guideline_version": ["none" if r[5] is None else f"v{r[5]}" for r in rows],
            "final_label": [_shown(r[6]) if r[6] is not None else "none" for r in rows],
            "created_at": [as_utc(r[4]) for r in rows],
        }
    )


def _clean(value: Any) -> Any:
    """JSON-ready: NaN and pandas NA become None, NumPy scalars Python numbers."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def agreement_figures(frame: pd.DataFrame) -> dict[str, Any]:
    """The seven figures of a long table (zeros and None when it is empty)."""
    from labelwise.quality import agreement_report

    if frame.empty:
        return {key: (0 if key.startswith("n_") else None) for key in FIGURES}
    report = agreement_report(frame).to_dict()
    return {key: _clean(report[key]) for key in FIGURES}


def _breakdown(frame: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return [
        {column: str(group), **agreement_figures(part)}
        for group, part in frame.groupby(column, sort=True)
    ]


def project_agreement(*, session: Session, project: Project) -> dict[str, Any]:
    """Agreement figures of the project's queue answers, overall and per group.

    The seven keys of :data:`FIGURES`, plus ``by_reason``, ``by_label`` (the
    item's final label; ``none`` while it has none), ``by_week`` and
    ``by_guideline_version``: lists of ``{group: value, **figures}``. A group
    is computed exactly like the whole table, from its own answers.
    """
    frame = answers_frame(session=session, project=project)
    result: dict[str, Any] = {"project": project.name, **agreement_figures(frame)}
    for key, column in BREAKDOWNS.items():
        result[key] = _breakdown(frame, column)
    return result


def _seconds(times: list[int]) -> tuple[float | None, float | None]:
    if not times:
        return None, None
    return (
        round(statistics.median(times) / 1000, 2),
        round(statistics.fmean(times) / 1000, 2),
    )


def annotator_quality(*, session: Session, project: Project) -> list[dict[str, Any]]:
    """Per annotator: gold accuracy, agreement with final labels, time, flags.

    ``agreement_with_final`` compares an answer with its item's final label
    only where that label did not come from this answer alone: final labels
    resolved from two or more answers, or by a reviewer.
    """
    finals = {
        item_id: (label, method, n)
        for item_id, label, method, n in session.execute(
            select(
                FinalLabel.item_id,
                FinalLabel.label,
                FinalLabel.method,
                FinalLabel.n_annotations,
            ).where(FinalLabel.project_id == project.id)
        )
    }
    stats: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "answers": 0,
            "gold_answers": 0,
            "gold_correct": 0,
            "compared": 0,
            "agreed": 0,
            "times": [],
            "flags": 0,
        }
    )
    for name, item_id, label, spent, flag, provenance in session.execute(
        select(
            Member.name,
            Annotation.item_id,
            Annotation.label,
            Annotation.time_spent_ms,
            Annotation.flag,
            Annotation.provenance,
        )
        .join(Member, Member.id == Annotation.member_id)
        .where(Annotation.project_id == project.id, Annotation.source == _QUEUE)
    ):
        entry = stats[name]
        entry["answers"] += 1
        correct = (provenance or {}).get("gold_correct")
        if correct is not None:
            entry["gold_answers"] += 1
            entry["gold_correct"] += int(bool(correct))
        final = finals.get(item_id)
        if final is not None and (final[1] == _ADJUDICATED or (final[2] or 0) >= 2):
            entry["compared"] += 1
            entry["agreed"] += int(final[0] == label)
        if spent is not None:
            entry["times"].append(int(spent))
        if flag:
            entry["flags"] += 1
    for (name,) in session.execute(
        select(Member.name)
        .join(Lease, Lease.member_id == Member.id)
        .where(Lease.project_id == project.id, Lease.status == "flagged")
    ):
        stats[name]["flags"] += 1
    result = []
    for name in sorted(stats):
        entry = stats[name]
        median, mean = _seconds(entry["times"])
        result.append(
            {
                "annotator": name,
                "answers": entry["answers"],
                "gold_answers": entry["gold_answers"],
                "gold_accuracy": (
                    entry["gold_correct"] / entry["gold_answers"]
                    if entry["gold_answers"]
                    else None
                ),
                "compared_with_final": entry["compared"],
                "agreement_with_final": (
                    entry["agreed"] / entry["compared"] if entry["compared"] else None
                ),
                "median_seconds_per_item": median,
                "mean_seconds_per_item": mean,
                "flags": entry["flags"],
            }
        )
    return result
