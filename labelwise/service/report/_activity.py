"""The report's figures that need no model: throughput, time, gold, agreement.

Each function is one or two aggregate reads of the store. The queue answers
are read once (:func:`queue_answers`) as a small column frame (no item
fields) and every per-week, per-reason and per-annotator figure is a pandas
group-by over it, so SQLite and PostgreSQL give the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelwise.service.store.labels import decode_label_text
from labelwise.service.store.schema import (
    Annotation,
    Item,
    Member,
    ModelVersion,
    Project,
)

__all__ = [
    "QUEUE_SOURCE",
    "agreement_trend",
    "gold_error",
    "iso_utc",
    "labels_per_week",
    "model_curve",
    "queue_answers",
    "time_per_item",
    "week_of",
]

#: Annotation.source of an annotator's answer.
QUEUE_SOURCE = "queue"
_ANSWER_COLUMNS = [
    "item_id",
    "role",
    "annotator",
    "reason",
    "label",
    "time_spent_ms",
    "created_at",
    "gold_correct",
]


def week_of(moments: pd.Series) -> pd.Series:
    """The ISO week ("2026-W47") of each aware timestamp."""
    iso = moments.dt.isocalendar()
    weeks: pd.Series = (
        iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    )
    return weeks


def _week_start(moments: pd.Series) -> pd.Series:
    days = moments.dt.tz_convert("UTC").dt.normalize()
    starts: pd.Series = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return starts


def queue_answers(*, session: Session, project: Project) -> pd.DataFrame:
    """Every annotator answer of ``project``: item, role, who, why, time, when."""
    rows = session.execute(
        select(
            Annotation.item_id,
            Item.role,
            Member.name,
            Annotation.reason,
            Annotation.label,
            Annotation.time_spent_ms,
            Annotation.created_at,
            Annotation.provenance,
        )
        .join(Item, Item.id == Annotation.item_id)
        .outerjoin(Member, Member.id == Annotation.member_id)
        .where(Annotation.project_id == project.id, Annotation.source == QUEUE_SOURCE)
        .order_by(Annotation.id)
    ).all()
    records = [
        (
            item_id,
            role,
            name or "(unknown)",
            reason or "(none)",
            label,
            spent,
            at,
            (provenance or {}).get("gold_correct"),
        )
        for item_id, role, name, reason, label, spent, at, provenance in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=_ANSWER_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["time_spent_ms"] = pd.to_numeric(frame["time_spent_ms"]).astype("float64")
    frame["week"] = (
        week_of(frame["created_at"]) if len(frame) else pd.Series([], dtype=str)
    )
    return frame


def labels_per_week(answers: pd.DataFrame) -> list[dict[str, Any]]:
    """Per ISO week: answers given, distinct items answered, annotators active."""
    if answers.empty:
        return []
    starts = _week_start(answers["created_at"])
    grouped = answers.assign(week_start=starts).groupby("week", sort=True)
    table = grouped.agg(
        week_start=("week_start", "min"),
        answers=("item_id", "size"),
        items=("item_id", "nunique"),
        annotators=("annotator", "nunique"),
    )
    return [
        {
            "week": str(week),
            "week_start": row["week_start"].date().isoformat(),
            "answers": int(row["answers"]),
            "items": int(row["items"]),
            "annotators": int(row["annotators"]),
        }
        for week, row in table.iterrows()
    ]


def _time_stats(seconds: pd.Series) -> dict[str, Any]:
    known = seconds.dropna()
    if known.empty:
        return {
            "n_timed": 0,
            "median_seconds": None,
            "mean_seconds": None,
            "p90_seconds": None,
        }
    return {
        "n_timed": int(known.size),
        "median_seconds": round(float(known.median()), 2),
        "mean_seconds": round(float(known.mean()), 2),
        "p90_seconds": round(float(known.quantile(0.9)), 2),
    }


def time_per_item(answers: pd.DataFrame) -> dict[str, Any]:
    """Seconds per answer overall, by selection reason and by annotator."""
    seconds = answers["time_spent_ms"] / 1000.0

    def split(column: str, key: str) -> list[dict[str, Any]]:
        out = []
        for value, part in seconds.groupby(answers[column], sort=True):
            out.append(
                {key: str(value), "answers": int(part.size), **_time_stats(part)}
            )
        return out

    return {
        "overall": {"answers": len(answers), **_time_stats(seconds)},
        "by_reason": split("reason", "reason"),
        "by_annotator": split("annotator", "annotator"),
    }


def _error_rows(part: pd.DataFrame, key: str, column: str) -> list[dict[str, Any]]:
    out = []
    for value, group in part.groupby(column, sort=True):
        wrong = int((~group["gold_correct"].astype(bool)).sum())
        out.append(
            {
                key: str(value),
                "answers": len(group),
                "errors": wrong,
                "error_rate": round(wrong / len(group), 4),
            }
        )
    return out


def gold_error(answers: pd.DataFrame) -> dict[str, Any]:
    """Error rate of the answers to gold items (the stable QA set), and its trend."""
    checked = answers[answers["role"].eq("gold") & answers["gold_correct"].notna()]
    n = len(checked)
    wrong = int((~checked["gold_correct"].astype(bool)).sum()) if n else 0
    return {
        "answers": n,
        "errors": wrong,
        "error_rate": round(wrong / n, 4) if n else None,
        "by_week": _error_rows(checked, "week", "week") if n else [],
        "by_annotator": _error_rows(checked, "annotator", "annotator") if n else [],
    }


def agreement_trend(answers: pd.DataFrame) -> dict[str, Any]:
    """Share of items with 2+ answers whose answers all agree, by week of the last."""
    votes = answers[answers["role"].ne("gold")]
    if votes.empty:
        return {"items": 0, "agreed": 0, "share": None, "by_week": []}
    per_item = votes.groupby("item_id").agg(
        n=("label", "size"),
        distinct=("label", "nunique"),
        last=("created_at", "max"),
    )
    overlap = per_item[per_item["n"] >= 2]
    if overlap.empty:
        return {"items": 0, "agreed": 0, "share": None, "by_week": []}
    overlap = overlap.assign(
        agreed=overlap["distinct"].eq(1), week=week_of(overlap["last"])
    )
    weeks = [
        {
            "week": str(week),
            "items": len(part),
            "agreed": int(part["agreed"].sum()),
            "share": round(float(part["agreed"].mean()), 4),
        }
        for week, part in overlap.groupby("week", sort=True)
    ]
    agreed = int(overlap["agreed"].sum())
    return {
        "items": len(overlap),
        "agreed": agreed,
        "share": round(agreed / len(overlap), 4),
        "by_week": weeks,
    }


def model_curve(*, session: Session, project: Project) -> list[dict[str, Any]]:
    """Validation metrics of every trained model version against its label count."""
    rows = session.execute(
        select(
            ModelVersion.version,
            ModelVersion.model_name,
            ModelVersion.n_labels,
            ModelVersion.metrics,
            ModelVersion.calibration_error,
            ModelVersion.created_at,
        )
        .where(ModelVersion.project_id == project.id, ModelVersion.status == "done")
        .order_by(ModelVersion.id)
    ).all()
    out = []
    for version, model_name, n_labels, metrics, ece, at in rows:
        metrics = metrics or {}
        out.append(
            {
                "version": version,
                "model": model_name,
                "n_labels": int(n_labels),
                "accuracy": _maybe_float(metrics.get("accuracy")),
                "macro_f1": _maybe_float(metrics.get("macro_f1")),
                "n_validation": int(metrics.get("n_validation") or 0),
                "calibration_error": _maybe_float(ece),
                "created_at": iso_utc(at),
            }
        )
    return out


def iso_utc(moment: Any) -> str | None:
    """ISO 8601 in UTC of a stored time (SQLite gives naive UTC, PostgreSQL aware)."""
    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    stamp = (
        stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    )
    return stamp.isoformat()


def _maybe_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if not np.isfinite(number) else round(number, 4)


def decode_text(text: str) -> str:
    """A stored label as the plain class name used by the models."""
    value = decode_label_text(text)
    return value if isinstance(value, str) else repr(value)
