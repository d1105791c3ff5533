"""The report's figures that train models: per-round errors, drift, coverage, stop.

Models here are the project's default model without its calibration step
(``calibration="none"``): the report compares predicted labels and score
distributions, which calibration does not change the meaning of, and an
uncalibrated fit is several times cheaper (no internal cross-validation).

"The model at round r" is retrained from the labels the loop had before that
round: every labeled item except those first selected in round r or later.
It never saw round r's picks, so its errors on them are honest estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelwise.service.loop.training import (
    LabeledSet,
    item_features,
    predict_proba,
)
from labelwise.service.report._activity import decode_text, iso_utc
from labelwise.service.store.schema import FinalLabel, Item, Project, Round, Selection

__all__ = [
    "CONTROL_REASON",
    "LabeledItems",
    "Trainer",
    "coverage",
    "drift",
    "load_labeled",
    "load_validation",
    "round_errors",
    "stop_set",
]

#: Selection.reason of the uniformly random control slice.
CONTROL_REASON = "random"
#: Most recent model rounds retrained for the per-round figures.
MAX_ROUNDS = 12
#: Items scored on each side of the drift test, and in the stop set.
MAX_SCORED = 5000
#: KS p-value under which the newest import is said to have shifted.
DRIFT_P_VALUE = 0.01


@dataclass(frozen=True)
class Trainer:
    """Fits the project's default model (uncalibrated) on a labeled set."""

    project: Project
    model_name: str

    def __call__(self, training: LabeledSet, seed: int) -> Any:
        from labelwise.models import get_model

        model = get_model(
            self.model_name,
            classes=list(self.project.labels),
            calibration="none",
            random_state=seed,
        )
        model.fit(training.features, np.asarray(training.labels, dtype=object))
        return model


@dataclass(frozen=True, eq=False)
class LabeledItems:
    """The labeled pool and failure items, with how the loop came to pick each.

    ``reason[i]`` is the reason of the item's latest selection ("" when never
    selected, e.g. a seed label from an import); ``first_round[i]`` the number
    of the round that first selected it (0 when never selected).
    """

    labeled: LabeledSet
    reason: np.ndarray[Any, Any]
    first_round: np.ndarray[Any, Any]
    last_round: np.ndarray[Any, Any]

    def rows(self, mask: np.ndarray[Any, Any]) -> LabeledSet:
        """The labeled items where ``mask`` holds."""
        from labelwise.service.report._control import _subset

        return _subset(self.labeled, np.flatnonzero(mask))

    @property
    def is_control(self) -> np.ndarray[Any, Any]:
        """True for the items picked by the random control slice."""
        return np.asarray(self.reason == CONTROL_REASON)


def _labeled_rows(
    session: Session, project: Project, roles: tuple[str, ...]
) -> tuple[list[int], list[dict[str, Any]], list[str]]:
    rows = session.execute(
        select(Item.id, Item.fields, FinalLabel.label)
        .join(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id, Item.role.in_(roles))
        .order_by(Item.id)
    ).all()
    return (
        [r[0] for r in rows],
        [r[1] or {} for r in rows],
        [decode_text(r[2]) for r in rows],
    )


def load_validation(*, session: Session, project: Project) -> LabeledSet:
    """The labeled validation items (the fixed validation set)."""
    ids, fields, labels = _labeled_rows(session, project, ("validation",))
    return LabeledSet(ids, item_features(project, fields), labels)


def load_labeled(*, session: Session, project: Project) -> LabeledItems:
    """The labeled pool and failure items with their selection reason and rounds."""
    ids, fields, labels = _labeled_rows(session, project, ("pool", "failure"))
    picks = session.execute(
        select(Selection.item_id, Selection.reason, Round.number)
        .join(Round, Round.id == Selection.round_id)
        .join(FinalLabel, FinalLabel.item_id == Selection.item_id)
        .where(Round.project_id == project.id)
        .order_by(Round.number)
    ).all()
    latest: dict[int, str] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for item_id, reason, number in picks:
        latest[item_id] = reason
        first.setdefault(item_id, number)
        last[item_id] = number
    return LabeledItems(
        labeled=LabeledSet(ids, item_features(project, fields), labels),
        reason=np.asarray([latest.get(i, "") for i in ids], dtype=object),
        first_round=np.asarray([first.get(i, 0) for i in ids], dtype=np.int64),
        last_round=np.asarray([last.get(i, 0) for i in ids], dtype=np.int64),
    )


def _model_rounds(session: Session, project: Project) -> list[tuple[int, Any]]:
    rows = session.execute(
        select(Round.number, Round.created_at)
        .where(Round.project_id == project.id, Round.mode == "model")
        .order_by(Round.number.desc())
        .limit(MAX_ROUNDS)
    ).all()
    return [(int(n), at) for n, at in reversed(rows)]


def _error(predicted: np.ndarray[Any, Any], truth: list[str]) -> float | None:
    if not truth:
        return None
    return round(float(np.mean(predicted != np.asarray(truth, dtype=object))), 4)


def round_errors(
    *,
    session: Session,
    project: Project,
    items: LabeledItems,
    trainer: Trainer,
    validation: LabeledSet,
    stop_features: Any,
    seed: int,
    tick: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    """Per model round: the then-model's error on its control vs its selected picks.

    Also its validation macro-F1 and its predictions on the stop set, which
    the stopping rules read.
    """
    from labelwise.metrics import score_predictions

    out = []
    for number, at in _model_rounds(session, project):
        before = (items.first_round == 0) | (items.first_round < number)
        training = items.rows(before)
        picked = items.last_round == number
        if len(set(training.labels)) < 2 or not picked.any():
            tick()
            continue
        model = trainer(training, seed)
        test = items.rows(picked)
        predicted = np.asarray(model.predict(test.features), dtype=object)
        control = items.is_control[picked]
        truth = np.asarray(test.labels, dtype=object)
        entry: dict[str, Any] = {
            "round": number,
            "created_at": iso_utc(at),
            "n_training": len(training),
            "n_control": int(control.sum()),
            "n_selected": int((~control).sum()),
            "control_error": _error(predicted[control], list(truth[control])),
            "selected_error": _error(predicted[~control], list(truth[~control])),
            "validation_macro_f1": None,
            "stop_set_predictions": None,
        }
        if len(validation):
            guess = np.asarray(model.predict(validation.features), dtype=object)
            entry["validation_macro_f1"] = round(
                float(
                    score_predictions(
                        np.asarray(validation.labels, dtype=object),
                        guess,
                        metric="macro_f1",
                    )
                ),
                4,
            )
        if stop_features is not None and len(stop_features):
            entry["stop_set_predictions"] = np.asarray(
                model.predict(stop_features), dtype=object
            )
        out.append(entry)
        tick()
    return out


def _pool_ids(
    session: Session, project: Project
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rows = session.execute(
        select(Item.id, Item.created_at)
        .where(Item.project_id == project.id, Item.role == "pool")
        .order_by(Item.id)
    ).all()
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    stamps = pd.to_datetime(pd.Series([r[1] for r in rows], dtype=object), utc=True)
    return ids, stamps.to_numpy()


def _fields_of(session: Session, ids: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    wanted = [int(i) for i in ids]
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        for item_id, fields in session.execute(
            select(Item.id, Item.fields).where(Item.id.in_(chunk))
        ):
            found[item_id] = fields or {}
    return [found[i] for i in wanted]


def _sample(
    ids: np.ndarray[Any, Any], n: int, rng: np.random.Generator
) -> np.ndarray[Any, Any]:
    if len(ids) <= n:
        return ids
    return np.sort(rng.choice(ids, size=n, replace=False))


def stop_set(*, session: Session, project: Project, rng: np.random.Generator) -> Any:
    """Features of a fixed sample of the pool (seeded): the stopping rules' stop set."""
    ids, _ = _pool_ids(session, project)
    chosen = _sample(ids, MAX_SCORED, rng)
    if not len(chosen):
        return None
    return item_features(project, _fields_of(session, chosen))


def _confidence(model: Any, features: Any) -> np.ndarray[Any, Any]:
    return np.asarray(predict_proba(model, features).max(axis=1), dtype=np.float64)


def drift(
    *,
    session: Session,
    project: Project,
    model: Any | None,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """KS test of the model's confidence on the newest import vs the older pool."""
    from scipy.stats import ks_2samp

    ids, stamps = _pool_ids(session, project)
    out: dict[str, Any] = {
        "score": "max_probability",
        "newest_import_at": None,
        "n_newest": 0,
        "n_rest": 0,
        "ks_statistic": None,
        "p_value": None,
        "shifted": None,
        "newest_mean_score": None,
        "rest_mean_score": None,
        "note": "",
        "histogram": None,
    }
    if not len(ids):
        out["note"] = "No pool items yet."
        return out
    newest_at = stamps.max()
    newest = stamps == newest_at
    out["newest_import_at"] = iso_utc(newest_at)
    out["n_newest"], out["n_rest"] = int(newest.sum()), int((~newest).sum())
    if newest.all():
        out["note"] = "Every pool item came in one import: nothing to compare yet."
        return out
    if model is None:
        out["note"] = "No model yet (fewer than 2 classes labeled)."
        return out
    new_ids = _sample(ids[newest], MAX_SCORED, rng)
    old_ids = _sample(ids[~newest], MAX_SCORED, rng)
    new_scores = _confidence(
        model, item_features(project, _fields_of(session, new_ids))
    )
    old_scores = _confidence(
        model, item_features(project, _fields_of(session, old_ids))
    )
    result = ks_2samp(new_scores, old_scores)
    p_value = float(result.pvalue)
    edges = np.linspace(0.0, 1.0, 11)
    out["histogram"] = {
        "edges": [round(float(e), 2) for e in edges],
        "newest": [int(c) for c in np.histogram(new_scores, bins=edges)[0]],
        "rest": [int(c) for c in np.histogram(old_scores, bins=edges)[0]],
    }
    out.update(
        ks_statistic=round(float(result.statistic), 4),
        p_value=float(f"{p_value:.4g}"),
        shifted=bool(p_value < DRIFT_P_VALUE),
        newest_mean_score=round(float(new_scores.mean()), 4),
        rest_mean_score=round(float(old_scores.mean()), 4),
        note=(
            "The model's confidence on the newest import differs from the older "
            f"pool (KS p < {DRIFT_P_VALUE:g}): check the new data."
            if p_value < DRIFT_P_VALUE
            else "No shift detected between the newest import and the older pool."
        ),
    )
    return out


def coverage(
    *,
    session: Session,
    project: Project,
    items: LabeledItems,
    model: Any | None,
    rng: np.random.Generator,
    min_control: int,
) -> list[dict[str, Any]]:
    """Per class: labels bought, its prevalence estimate, and whether it is rare.

    The prevalence comes from the control labels (a uniform sample of the
    pool) once there are ``min_control`` of them, else from the model's
    predictions on a sample of the unlabeled pool. ``enrichment`` is the
    class's share of the labels over its prevalence: above 1 the loop finds
    the class more often than random labelling would.
    """
    classes = [str(c) for c in project.labels]
    labels = np.asarray(items.labeled.labels, dtype=object)
    control = labels[items.is_control]
    predicted_share: dict[str, float] = {}
    if model is not None:
        unlabeled = session.execute(
            select(Item.id)
            .outerjoin(FinalLabel, FinalLabel.item_id == Item.id)
            .where(
                Item.project_id == project.id,
                Item.role == "pool",
                FinalLabel.item_id.is_(None),
            )
            .order_by(Item.id)
        ).scalars()
        ids = _sample(np.asarray(list(unlabeled), dtype=np.int64), MAX_SCORED, rng)
        if len(ids):
            guess = np.asarray(
                model.predict(item_features(project, _fields_of(session, ids))),
                dtype=object,
            )
            predicted_share = {c: float(np.mean(guess == c)) for c in classes}
    out = []
    for name in classes:
        n = int(np.sum(labels == name))
        share = n / len(labels) if len(labels) else None
        control_share = float(np.mean(control == name)) if len(control) else None
        if len(control) >= min_control:
            prevalence, source = control_share, "control"
        elif name in predicted_share:
            prevalence, source = predicted_share[name], "model"
        else:
            prevalence, source = None, None
        out.append(
            {
                "label": name,
                "n_labels": n,
                "label_share": None if share is None else round(share, 4),
                "control_share": None
                if control_share is None
                else round(control_share, 4),
                "predicted_pool_share": round(predicted_share[name], 4)
                if name in predicted_share
                else None,
                "prevalence": None if prevalence is None else round(prevalence, 4),
                "prevalence_source": source,
                "rare": None
                if prevalence is None
                else bool(prevalence < 0.5 / len(classes)),
                "enrichment": round(share / prevalence, 2)
                if share is not None and prevalence
                else None,
            }
        )
    return out


def count_pool(session: Session, project: Project) -> int:
    """Pool items of ``project``."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.project_id == project.id, Item.role == "pool")
        )
        or 0
    )
