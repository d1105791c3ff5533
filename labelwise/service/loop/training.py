"""Training for a round: item features, the model, its version row and its scores."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelwise.exceptions import ConfigError
from labelwise.service.store.schema import ModelVersion, Project

__all__ = [
    "MIN_VALIDATION_FOR_ECE",
    "SCORE_CHUNK",
    "Features",
    "LabeledSet",
    "ModelDraft",
    "default_model_name",
    "draft_model_version",
    "evaluate",
    "featurize",
    "item_features",
    "model_kind",
    "predict_proba",
    "record_model_version",
    "take",
    "train_model",
    "version_hashes",
    "write_model_version",
]

#: Labeled validation items needed before a calibration error is recorded.
MIN_VALIDATION_FOR_ECE = 10
#: Pool items scored per ``predict_proba`` call, so memory stays bounded.
SCORE_CHUNK = 10_000

#: What models read: texts (a list) or a table (a DataFrame), one row per item.
Features = list[str] | pd.DataFrame

_KIND_BY_PREFIX = {"text_": "text", "tabular_": "tabular", "embedding_": "embeddings"}


@dataclass(frozen=True, eq=False)
class LabeledSet:
    """Labeled items: their ids, model features and decoded labels, in id order."""

    item_ids: list[int]
    features: Features
    labels: list[str]

    def __len__(self) -> int:
        return len(self.item_ids)


def default_model_name(project: Project) -> str:
    """The project's default model: text logistic with a text field, else tabular."""
    return "text_logistic" if project.text_field else "tabular_logistic"


def model_kind(model_name: str) -> str:
    """The data kind (text, tabular, embeddings) that a registered model reads."""
    from labelwise.models import get_model_names

    names = get_model_names()
    for prefix, kind in _KIND_BY_PREFIX.items():
        if model_name in names and model_name.startswith(prefix):
            return kind
    raise ConfigError(
        f"The model must be one of the registered default models: {', '.join(names)} "
        f"(labelwise.models.get_model_names()). Got {model_name!r} instead.",
        hint="Pass one of these names, or None for the project's default model.",
    )


def item_features(project: Project, fields: Sequence[dict[str, Any]]) -> Features:
    """What the model reads of each item: its text field, or a table of its fields."""
    if project.text_field:
        name = project.text_field
        return ["" if f.get(name) is None else str(f.get(name)) for f in fields]
    columns = list(project.fields) or sorted({key for f in fields for key in f})
    if not columns:
        raise ConfigError(
            f"Project {project.name!r} has no text field and no fields, and its "
            "items have no fields either: there is nothing to learn from.",
            hint="Create the project with --text-field or --fields and import items "
            "that carry those fields.",
        )
    return pd.DataFrame.from_records(list(fields), columns=columns)


def take(features: Features, start: int, stop: int) -> Features:
    """Rows ``start:stop`` of ``features``."""
    if isinstance(features, pd.DataFrame):
        return features.iloc[start:stop]
    return features[start:stop]


def _concat(parts: Sequence[Features]) -> Features:
    frames = [p for p in parts if isinstance(p, pd.DataFrame)]
    if frames:
        filled = [f for f in frames if len(f)]
        return pd.concat(filled, ignore_index=True) if filled else frames[0]
    return [text for part in parts if isinstance(part, list) for text in part]


def version_hashes(
    model_name: str, pairs: Sequence[tuple[int, str]]
) -> tuple[str, str]:
    """(model version, labels hash): SHA-256 of (model, sorted (item id, label))."""
    ordered = sorted((int(item_id), str(label)) for item_id, label in pairs)
    labels_json = json.dumps(ordered, separators=(",", ":"))
    labels_hash = hashlib.sha256(labels_json.encode("utf-8")).hexdigest()
    spec = json.dumps([model_name, ordered], separators=(",", ":"))
    version = hashlib.sha256(spec.encode("utf-8")).hexdigest()[:12]
    return version, labels_hash


def train_model(
    *, project: Project, model_name: str, training: LabeledSet, seed: int
) -> Any:
    """Fit the calibrated default model ``model_name`` on ``training``."""
    from labelwise.models import get_model

    model = get_model(model_name, classes=list(project.labels), random_state=seed)
    model.fit(training.features, np.asarray(training.labels, dtype=object))
    return model


def predict_proba(model: Any, features: Features) -> np.ndarray[Any, Any]:
    """Class probabilities of ``features``, :data:`SCORE_CHUNK` rows at a time."""
    n = len(features)
    parts = [
        np.asarray(
            model.predict_proba(take(features, start, start + SCORE_CHUNK)),
            dtype=np.float64,
        )
        for start in range(0, n, SCORE_CHUNK)
    ]
    if not parts:
        return np.empty((0, len(model.classes_)), dtype=np.float64)
    return np.concatenate(parts)


def evaluate(model: Any, validation: LabeledSet) -> tuple[dict[str, Any], float | None]:
    """Metrics on the labeled validation items ({} if none) and the ECE (None < 10)."""
    from labelwise.calibration import expected_calibration_error
    from labelwise.metrics import score_predictions

    n = len(validation)
    if n == 0:
        return {}, None
    probas = predict_proba(model, validation.features)
    classes = np.asarray(model.classes_)
    predicted = classes[np.argmax(probas, axis=1)]
    y_true = np.asarray(validation.labels, dtype=object)
    metrics: dict[str, Any] = {
        "accuracy": float(score_predictions(y_true, predicted, metric="accuracy")),
        "macro_f1": float(score_predictions(y_true, predicted, metric="macro_f1")),
        "n_validation": n,
    }
    ece = None
    if n >= MIN_VALIDATION_FOR_ECE:
        ece = float(expected_calibration_error(y_true, probas, classes=classes))
    return metrics, ece


@dataclass(frozen=True)
class ModelDraft:
    """A trained model's version row, computed outside any write transaction."""

    version: str
    model_name: str
    n_labels: int
    labels_hash: str
    calibration_method: str
    calibration_error: float | None
    metrics: dict[str, Any]


def draft_model_version(
    *, model_name: str, model: Any, training: LabeledSet, validation: LabeledSet
) -> ModelDraft:
    """The version, label hash, validation metrics and ECE of a fitted ``model``."""
    version, labels_hash = version_hashes(
        model_name, list(zip(training.item_ids, training.labels, strict=True))
    )
    metrics, ece = evaluate(model, validation)
    return ModelDraft(
        version=version,
        model_name=model_name,
        n_labels=len(training),
        labels_hash=labels_hash,
        calibration_method=str(model.method_),
        calibration_error=ece,
        metrics=metrics,
    )


def write_model_version(
    *, session: Session, project: Project, draft: ModelDraft
) -> ModelVersion:
    """The ModelVersion row of ``draft``: the row for the same labels, or a new one."""
    existing = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.version == draft.version
        )
    )
    if existing is not None:
        return existing
    row = ModelVersion(
        project_id=project.id,
        version=draft.version,
        model_name=draft.model_name,
        n_labels=draft.n_labels,
        labels_hash=draft.labels_hash,
        calibration_method=draft.calibration_method,
        calibration_error=draft.calibration_error,
        metrics=dict(draft.metrics),
        status="done",
    )
    session.add(row)
    session.flush()
    return row


def record_model_version(
    *,
    session: Session,
    project: Project,
    model_name: str,
    model: Any,
    training: LabeledSet,
    validation: LabeledSet,
) -> ModelVersion:
    """The ModelVersion of ``model``: the existing row for the same labels, or new."""
    version, _ = version_hashes(
        model_name, list(zip(training.item_ids, training.labels, strict=True))
    )
    existing = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.version == version
        )
    )
    if existing is not None:
        return existing
    draft = draft_model_version(
        model_name=model_name, model=model, training=training, validation=validation
    )
    return write_model_version(session=session, project=project, draft=draft)


def featurize(
    kind: str, parts: Sequence[Features], *, seed: int
) -> list[np.ndarray[Any, Any]]:
    """Dense geometry features of each part, from one featurizer fitted on them all.

    The featurizer reads no label; fitting it on the pool, the labeled items
    and the failures together puts them in one space.
    """
    from labelwise.models import make_featurizer

    featurizer = make_featurizer(kind, random_state=seed)
    everything = _concat(parts)
    geometry = np.asarray(featurizer.fit_transform(everything), dtype=np.float64)
    out: list[np.ndarray[Any, Any]] = []
    start = 0
    for part in parts:
        out.append(geometry[start : start + len(part)])
        start += len(part)
    return out
