"""A selection round: train on the final labels, score the pool, record the batch.

:func:`run_round` is one use-case over one transaction (the caller owns it):
it reads the project's labels and unlabeled pool, trains and records a model
version (or starts cold), builds a batch with the policy and writes the
Round and its Selections in bulk. docs/rounds.md tells the whole story.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from labelwise._validation import check_int
from labelwise.exceptions import ConfigError, PoolExhausted
from labelwise.policy import Batch, BatchPolicy, build_batch, load_policy
from labelwise.service.loop.score_cache import (
    ITEM_KEY,
    lookup,
    read_scores,
    score_path,
    write_scores,
)
from labelwise.service.loop.training import (
    Features,
    LabeledSet,
    ModelDraft,
    default_model_name,
    draft_model_version,
    featurize,
    item_features,
    model_kind,
    predict_proba,
    train_model,
    write_model_version,
)
from labelwise.service.quality import refresh_before_round
from labelwise.service.queue.service import enqueue_round
from labelwise.service.store.items import count_items, labeled_items, unlabeled_pool
from labelwise.service.store.pools import get_pool_source
from labelwise.service.store.schema import Item, PoolSource, Project, Round, Selection
from labelwise.strategies import ScoringContext

__all__ = [
    "COLD_START",
    "DEFAULT_MIN_LABELS",
    "MAX_SEED",
    "MODEL",
    "RoundPlan",
    "RoundSummary",
    "commit_round",
    "plan_round",
    "run_round",
]

#: Round.mode when no model could be trained yet.
COLD_START = "cold_start"
#: Round.mode when a model scored the pool.
MODEL = "model"
#: Final labels needed (of 2+ classes) before a round trains a model.
DEFAULT_MIN_LABELS = 10
#: Largest seed a round records (the column is a 32-bit integer).
MAX_SEED = 2**31 - 1
#: Committee members trained when a policy reads a committee.
COMMITTEE_SIZE = 4

_GEOMETRY_FIELDS = frozenset({"X", "X_labeled", "X_failures"})


@dataclass(frozen=True)
class RoundSummary:
    """What a round did: ids, model and policy versions, mode, picks per reason."""

    round_id: int
    round_number: int
    model_version: str | None
    policy_version: str
    policy: str
    mode: str
    selected: int
    counts_by_reason: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``labelwise round --json``."""
        return {
            "round_id": self.round_id,
            "round_number": self.round_number,
            "model_version": self.model_version,
            "policy_version": self.policy_version,
            "policy": self.policy,
            "mode": self.mode,
            "selected": self.selected,
            "counts_by_reason": dict(self.counts_by_reason),
            "metrics": dict(self.metrics),
        }


def _resolve_policy(policy: str | os.PathLike[str] | BatchPolicy) -> BatchPolicy:
    if isinstance(policy, BatchPolicy):
        return policy
    return load_policy(policy)


def _resolve_seed(seed: int | None) -> int:
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    return check_int(seed, param="seed", owner="run_round", low=0, high=MAX_SEED)


def _labeled(
    session: Session, project: Project, roles: tuple[str, ...]
) -> tuple[LabeledSet, list[dict[str, Any]]]:
    ids, fields, labels = labeled_items(session=session, project=project, roles=roles)
    as_text = [label if isinstance(label, str) else repr(label) for label in labels]
    return LabeledSet(ids, item_features(project, fields), as_text), fields


def _failure_fields(session: Session, project: Project) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Item.fields)
        .where(Item.project_id == project.id, Item.role == "failure")
        .order_by(Item.id)
    )
    return list(rows)


def _empty_pool(session: Session, project: Project) -> PoolExhausted:
    total = count_items(session=session, project=project, role="pool")
    given = (
        "it has no pool items"
        if total == 0
        else f"all {total} of its pool items have final labels"
    )
    return PoolExhausted(
        f"Pool exhausted: a round needs at least 1 unlabeled pool item in project "
        f"{project.name!r}, but {given} (validation, gold and failure items are "
        "never selected).",
        hint=f"Import unlabeled items: `labelwise import {project.name} FILE "
        "--role pool`.",
    )


def _next_number(session: Session, project: Project) -> int:
    # Lock the project row (PostgreSQL) so two rounds cannot take one number;
    # on SQLite BEGIN IMMEDIATE already serialises writers.
    session.execute(
        select(Project.id).where(Project.id == project.id).with_for_update()
    )
    latest = session.scalar(
        select(func.max(Round.number)).where(Round.project_id == project.id)
    )
    return int(latest or 0) + 1


def _subset(features: Features, rows: np.ndarray[Any, Any]) -> Features:
    if isinstance(features, list):
        return [features[int(i)] for i in rows]
    return features.iloc[rows]


def _pool_probas(
    *,
    fitted: Any,
    candidates: Features,
    candidate_ids: list[int],
    data_dir: str | os.PathLike[str] | None,
    project: Project,
    version: str,
    seed: int,
) -> np.ndarray[Any, Any]:
    """The pool's probabilities: cached rows of this model, the others predicted.

    Without ``data_dir`` every row is predicted. With it, the model's score file
    (docs/scale.md#score-cache) supplies the rows it holds and gains the rest.
    """
    if data_dir is None:
        return predict_proba(fitted, candidates)
    classes = list(project.labels)
    path = score_path(data_dir, project.id, version)
    cached = read_scores(path, key=ITEM_KEY, classes=classes, seed=seed)
    probas, missing = lookup(cached, candidate_ids, len(classes))
    rows = np.flatnonzero(missing)
    if rows.size:
        fresh = predict_proba(fitted, _subset(candidates, rows))
        probas[rows] = fresh
        keys = np.asarray(candidate_ids, dtype=np.int64)[rows]
        write_scores(
            path,
            key=ITEM_KEY,
            keys=keys,
            probas=fresh,
            classes=classes,
            seed=seed,
            version=version,
            previous=cached,
        )
    return probas


def _record(
    session: Session,
    *,
    project: Project,
    number: int,
    policy: BatchPolicy,
    batch: Batch,
    model_version_id: int | None,
    seed: int,
    batch_size: int,
    mode: str,
) -> Round:
    row = Round(
        project_id=project.id,
        number=number,
        model_version_id=model_version_id,
        policy_version=policy.version,
        policy=policy.to_dict(),
        seed=seed,
        batch_size=batch_size,
        mode=mode,
        counts_by_reason=batch.counts_by_reason(),
    )
    session.add(row)
    session.flush()
    selections = [
        {
            "round_id": row.id,
            "item_id": int(record["id"]),
            "reason": record["reason"],
            "strategy": record["strategy"],
            "score": _finite_or_none(record["score"]),
            "rank": record["rank"],
        }
        for record in batch.to_records()
    ]
    if selections:
        session.execute(insert(Selection), selections)
    enqueue_round(session=session, round=row)
    return row


def _finite_or_none(score: float | None) -> float | None:
    if score is None or not math.isfinite(score):
        return None
    return float(score)


@dataclass(frozen=True, eq=False)
class RoundPlan:
    """A round computed from a snapshot of the store, not yet written.

    :func:`plan_round` builds it (reads only: it may run outside any write
    transaction while the model trains); :func:`commit_round` writes it.
    """

    project_id: int
    spec: BatchPolicy
    seed: int
    batch_size: int
    batch: Batch
    mode: str
    model: ModelDraft | None
    candidate_ids: list[int]
    probas: np.ndarray[Any, Any] | None
    #: An external pool's round: ``batch.ids`` are row positions in its files,
    #: materialised as items by :func:`commit_round` (docs/scale.md).
    external_source_id: int | None = None


def _check_model(project: Project, model: str | None) -> tuple[str, str]:
    model_name = default_model_name(project) if model is None else model
    kind = model_kind(model_name)
    if (kind == "tabular") == bool(project.text_field):
        reads = "a table of fields" if kind == "tabular" else "text"
        has = f"text field {project.text_field!r}" if project.text_field else "no text"
        raise ConfigError(
            f"The model must read what project {project.name!r} holds ({has}). Got "
            f"model {model_name!r}, which reads {reads}.",
            hint="Pass model=None for the project's default model.",
        )
    return model_name, kind


def plan_round(
    *,
    session: Session,
    project: Project,
    batch_size: int = 50,
    policy: str | os.PathLike[str] | BatchPolicy = "default",
    seed: int | None = None,
    model: str | None = None,
    min_labels: int = DEFAULT_MIN_LABELS,
    keep_probas: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    chunk_size: int | None = None,
    dask_scheduler: str | None = None,
) -> RoundPlan:
    """Read the labels and the pool, train, score and build the batch.

    Writes nothing to the database. ``chunk_size`` bounds the rows scored at a
    time (it never changes the batch). With ``data_dir`` the pool's
    probabilities are cached per model version (and seed) there, and a round of
    a cached model scores only the items its file lacks
    (docs/scale.md#score-cache). A project with an external pool (``labelwise
    pool add``) streams its Parquet files, as Dask tasks when
    ``dask_scheduler`` is given (docs/scale.md); a pool in the database
    ignores ``dask_scheduler``.
    """
    batch_size = check_int(batch_size, param="batch_size", owner="run_round", low=1)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, param="chunk_size", owner="run_round", low=1)
    min_labels = check_int(min_labels, param="min_labels", owner="run_round", low=1)
    spec = _resolve_policy(policy)
    seed = _resolve_seed(seed)
    model_name, kind = _check_model(project, model)
    source = get_pool_source(session=session, project=project)
    candidate_ids: list[int] = []
    candidates: Features = []
    if source is None:
        candidate_ids, candidate_fields = unlabeled_pool(
            session=session, project=project
        )
        if not candidate_ids:
            raise _empty_pool(session, project)
        candidates = item_features(project, candidate_fields)
    refresh_before_round(session=session, project=project)  # Dawid-Skene (#6)
    training, _ = _labeled(session, project, ("pool", "failure"))
    required = spec.required_inputs()
    rng = np.random.default_rng(seed)

    cold = (
        project.multi_label
        or len(training) < min_labels
        or len(set(training.labels)) < 2
    )
    fitted: Any = None
    draft = None
    probas = committee = None
    if not cold:
        fitted = train_model(
            project=project, model_name=model_name, training=training, seed=seed
        )
        validation, _ = _labeled(session, project, ("validation",))
        draft = draft_model_version(
            model_name=model_name,
            model=fitted,
            training=training,
            validation=validation,
        )
        if source is not None:
            pass  # the pool is scored chunk by chunk below
        elif (
            "probas" in required
            or spec.class_quotas
            or keep_probas
            or data_dir is not None
        ):
            probas = _pool_probas(
                fitted=fitted,
                candidates=candidates,
                candidate_ids=candidate_ids,
                data_dir=data_dir,
                project=project,
                version=draft.version,
                seed=seed,
            )
        if "committee_probas" in required and source is None:
            from labelwise.models import committee_predict_proba, fit_committee

            members = fit_committee(
                fitted,
                training.features,
                np.asarray(training.labels, dtype=object),
                n_members=COMMITTEE_SIZE,
                rng=rng,
            )
            committee = committee_predict_proba(members, candidates)

    if source is not None:
        from labelwise.scale import DEFAULT_CHUNK_SIZE
        from labelwise.service.loop.external import ExternalInputs, external_batch

        inputs = ExternalInputs(
            kind=kind,
            model=fitted,
            training=training,
            failures=item_features(project, _failure_fields(session, project)),
            seed=seed,
            data_dir=data_dir,
            version=None if draft is None else draft.version,
        )
        batch, _ = external_batch(
            session=session,
            project=project,
            source=source,
            spec=spec,
            inputs=inputs,
            batch_size=batch_size,
            rng=rng,
            chunk_size=chunk_size or DEFAULT_CHUNK_SIZE,
            scheduler=dask_scheduler,
        )
        return RoundPlan(
            project_id=project.id,
            spec=spec,
            seed=seed,
            batch_size=batch_size,
            batch=batch,
            mode=COLD_START if cold else MODEL,
            model=draft,
            candidate_ids=[],
            probas=None,
            external_source_id=source.id,
        )

    X = X_labeled = X_failures = None
    labeled_correct = None
    if required & _GEOMETRY_FIELDS:
        failures = item_features(project, _failure_fields(session, project))
        X, X_labeled, X_failures = featurize(
            kind, [candidates, training.features, failures], seed=seed
        )
        if fitted is not None and len(training):
            predicted = np.asarray(fitted.predict(training.features), dtype=object)
            labeled_correct = predicted == np.asarray(training.labels, dtype=object)
    context = ScoringContext(
        probas=probas,
        X=X,
        committee_probas=committee,
        X_labeled=X_labeled if X_labeled is not None and X_labeled.size else None,
        labeled_correct=labeled_correct,
        X_failures=X_failures if X_failures is not None and X_failures.size else None,
    )
    batch = build_batch(
        spec,
        context,
        batch_size=min(batch_size, len(candidate_ids)),
        ids=np.asarray(candidate_ids, dtype=np.int64),
        classes=list(project.labels),
        rng=rng,
        chunk_size=chunk_size,
    )
    return RoundPlan(
        project_id=project.id,
        spec=spec,
        seed=seed,
        batch_size=batch_size,
        batch=batch,
        mode=COLD_START if cold else MODEL,
        model=draft,
        candidate_ids=candidate_ids,
        probas=probas,
    )


def commit_round(
    *,
    session: Session,
    project: Project,
    plan: RoundPlan,
) -> RoundSummary:
    """Write a planned round: its model version, Round, Selections and queue entries.

    Enqueueing retires the open, unleased entries of earlier rounds in the
    same transaction, so the queue swaps to the new batch atomically.
    """
    batch = plan.batch
    if plan.external_source_id is not None:
        from labelwise.service.store.pools import materialise

        source = session.get(PoolSource, plan.external_source_id)
        if source is None:
            raise ConfigError(
                f"The external pool of project {project.name!r} was removed while "
                "the round was being planned.",
                hint=f"Add it again with `labelwise pool add {project.name} ...` "
                "and start the round again.",
            )
        item_ids = materialise(
            session=session, project=project, source=source, positions=batch.positions
        )
        batch = replace(batch, ids=np.asarray(item_ids, dtype=np.int64))
    number = _next_number(session, project)
    version = (
        None
        if plan.model is None
        else write_model_version(session=session, project=project, draft=plan.model)
    )
    row = _record(
        session,
        project=project,
        number=number,
        policy=plan.spec,
        batch=batch,
        model_version_id=None if version is None else version.id,
        seed=plan.seed,
        batch_size=plan.batch_size,
        mode=plan.mode,
    )
    return RoundSummary(
        round_id=row.id,
        round_number=number,
        model_version=None if version is None else version.version,
        policy_version=plan.spec.version,
        policy=plan.spec.name,
        mode=plan.mode,
        selected=len(batch),
        counts_by_reason=batch.counts_by_reason(),
        metrics=dict(version.metrics or {}) if version is not None else {},
    )


def run_round(
    *,
    session: Session,
    project: Project,
    batch_size: int = 50,
    policy: str | os.PathLike[str] | BatchPolicy = "default",
    seed: int | None = None,
    model: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    min_labels: int = DEFAULT_MIN_LABELS,
    chunk_size: int | None = None,
    dask_scheduler: str | None = None,
) -> RoundSummary:
    """Train on the final labels, score the unlabeled pool, record a batch of picks.

    :func:`plan_round` then :func:`commit_round` in the caller's transaction;
    the arguments are :func:`plan_round`'s.
    """
    plan = plan_round(
        session=session,
        project=project,
        batch_size=batch_size,
        policy=policy,
        seed=seed,
        model=model,
        min_labels=min_labels,
        data_dir=data_dir,
        chunk_size=chunk_size,
        dask_scheduler=dask_scheduler,
    )
    return commit_round(session=session, project=project, plan=plan)
