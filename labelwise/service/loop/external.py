"""The batch of a round whose project reads its pool from Parquet files (#8).

The files are streamed in chunks (:func:`labelwise.scale.select_parquet`),
locally or as Dask tasks; items already labeled are left out by external id;
only the selected rows are materialised as items. With a data folder the
pool's probabilities are cached per model version by external id
(:mod:`labelwise.service.loop.score_cache`). The model and the geometry
featurizer are fitted here, on the labeled items (the featurizer also on the
failures and the first chunk of the pool, so it sees unlabeled data too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labelwise.exceptions import PoolExhausted
from labelwise.policy import Batch, BatchPolicy
from labelwise.service.loop.score_cache import (
    EXTERNAL_KEY,
    ScoreTable,
    read_scores,
    score_path,
    write_scores,
)
from labelwise.service.loop.training import Features, LabeledSet
from labelwise.service.store.pools import open_pool
from labelwise.service.store.schema import FinalLabel, Item, PoolSource, Project

__all__ = ["ExternalInputs", "external_batch"]

_GEOMETRY_FIELDS = frozenset({"X", "X_labeled", "X_failures"})
#: First pool rows the geometry featurizer also sees (fixed, so that the chunk
#: size never changes the batch).
FEATURIZER_ROWS = 10_000


@dataclass(frozen=True, eq=False)
class ExternalInputs:
    """What the round already computed: the model (None at cold start) and sets."""

    kind: str
    model: Any
    training: LabeledSet
    failures: Features
    seed: int
    data_dir: str | os.PathLike[str] | None = None
    version: str | None = None


def _labeled_external_ids(session: Session, project: Project) -> np.ndarray[Any, Any]:
    rows = session.scalars(
        select(Item.external_id)
        .join(FinalLabel, FinalLabel.item_id == Item.id)
        .where(Item.project_id == project.id)
    )
    return np.asarray(sorted(str(r) for r in rows), dtype=str)


def _first_chunk(pool: Any, scorer: Any, size: int) -> Features:
    for _, table in pool.iter_tables(size):
        return scorer.features(table)  # type: ignore[no-any-return]
    return []


def external_batch(
    *,
    session: Session,
    project: Project,
    source: PoolSource,
    spec: BatchPolicy,
    inputs: ExternalInputs,
    batch_size: int,
    rng: np.random.Generator,
    chunk_size: int,
    scheduler: str | None,
) -> tuple[Batch, int]:
    """The round's batch (``positions`` are rows of the pool) and the pool's rows."""
    from labelwise.models import make_featurizer
    from labelwise.scale import ChunkScorer, select_parquet
    from labelwise.service.loop.training import _concat

    pool = open_pool(source)
    exclude = _labeled_external_ids(session, project)
    available = pool.n_rows - exclude.size
    if available <= 0:
        raise PoolExhausted(
            f"Pool exhausted: the external pool of project {project.name!r} "
            f"({source.path!r}, {pool.n_rows} rows) has no unlabeled row.",
            hint=f"Add files: `labelwise pool remove {project.name}` then "
            f"`labelwise pool add {project.name} 'NEW_GLOB'`.",
        )
    required = spec.required_inputs()
    text = source.text_column
    scorer = ChunkScorer(
        id_column=source.id_column,
        feature_columns=tuple(source.feature_columns or ()),
        text_column=text,
        model=inputs.model,
        as_frame=not text,
        want_probas=bool(
            inputs.model is not None and ("probas" in required or spec.class_quotas)
        ),
        want_X=bool(required & _GEOMETRY_FIELDS),
        exclude_ids=exclude,
    )
    cached: ScoreTable | None = None
    fresh: list[tuple[Any, Any]] = []
    path = None
    if scorer.want_probas and inputs.data_dir is not None and inputs.version:
        path = score_path(inputs.data_dir, project.id, inputs.version)
        cached = read_scores(
            path, key=EXTERNAL_KEY, classes=list(project.labels), seed=inputs.seed
        )
        empty = np.empty((0, len(project.labels)), dtype=np.float64)
        scorer = replace(
            scorer,
            cached_ids=np.empty(0, dtype=str) if cached is None else cached.keys,
            cached_probas=empty if cached is None else cached.probas,
        )
    X_labeled = X_failures = labeled_correct = None
    if scorer.want_X:
        sample = _first_chunk(pool, scorer, FEATURIZER_ROWS)
        featurizer = make_featurizer(inputs.kind, random_state=inputs.seed)
        featurizer.fit(_concat([sample, inputs.training.features, inputs.failures]))
        scorer = replace(scorer, featurizer=featurizer)
        if len(inputs.training):
            X_labeled = np.asarray(
                featurizer.transform(inputs.training.features), dtype=np.float64
            )
        if len(inputs.failures):
            X_failures = np.asarray(
                featurizer.transform(inputs.failures), dtype=np.float64
            )
        if inputs.model is not None and len(inputs.training):
            predicted = np.asarray(
                inputs.model.predict(inputs.training.features), dtype=object
            )
            labeled_correct = predicted == np.asarray(
                inputs.training.labels, dtype=object
            )
    batch = select_parquet(
        spec,
        pool,
        scorer,
        batch_size=min(batch_size, available),
        rng=rng,
        classes=list(project.labels),
        chunk_size=chunk_size,
        scheduler=scheduler,
        X_labeled=X_labeled,
        labeled_correct=labeled_correct,
        X_failures=X_failures,
        on_scores=None if path is None else fresh.append,
    )
    if path is not None and fresh:
        write_scores(
            path,
            key=EXTERNAL_KEY,
            keys=np.concatenate([ids for ids, _ in fresh]),
            probas=np.concatenate([p for _, p in fresh]),
            classes=list(project.labels),
            seed=inputs.seed,
            version=str(inputs.version),
            previous=cached,
        )
    # Picks become items in commit_round (a write); planning only reads.
    return batch, pool.n_rows
