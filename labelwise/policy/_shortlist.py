"""Two-stage selection: reduce each chunk of a pool to a shortlist, then choose.

A pool too large for memory is read in chunks. Each chunk is scored and cut
down to the rows that can still matter (:func:`reduce_chunk`):

- the ``sample_size`` rows with the smallest row keys: a uniform sample that
  holds the control slice, the random fill and the rows the geometry
  strategies (k-center, cluster quotas, density) work on;
- per component whose strategy can tell from one chunk
  (:meth:`Strategy.preselect`): its best ``batch_size`` rows (top-k by score for
  pointwise scorers, the first rows of each confidence bucket, the
  ``candidate_factor * batch_size`` most uncertain for representative, the
  ``max(candidate_factor * batch_size, min_candidates + batch_size)`` most
  uncertain for weighted_clusters), and with class quotas the best
  ``batch_size`` of each predicted class.

Shortlists merge by concatenating and reducing again, in any order and any
grouping, and the result is the shortlist of the whole pool. The batch is then
built on the merged shortlist (:func:`select_from_shortlist`) exactly as
:func:`build_batch` builds it in memory, which goes through the same two
stages, so the chunked, the Dask and the in-memory paths choose the same
items for the same seed. docs/scale.md states the size rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise._rowkeys import key_seed_from, row_keys, smallest_keys
from labelwise._typing import FloatArray, IndexArray, RandomState
from labelwise._validation import check_int, check_rng
from labelwise.exceptions import InvalidInputError
from labelwise.policy._spec import BatchPolicy
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = [
    "DEFAULT_SAMPLE_FLOOR",
    "SAMPLE_PER_SLOT",
    "PoolChunk",
    "ShortlistPlan",
    "make_plan",
    "merge_shortlists",
    "reduce_chunk",
    "shortlist_sample_size",
]

#: Smallest uniform sample a shortlist keeps (the geometry strategies' pool).
DEFAULT_SAMPLE_FLOOR = 10_000
#: Uniform-sample rows per batch slot when that is more than the floor.
SAMPLE_PER_SLOT = 10

_PER_ITEM = ("probas", "X", "costs")
_PER_MEMBER = ("committee_probas", "committee_predictions")


def shortlist_sample_size(batch_size: int) -> int:
    """Rows of the uniform sample: ``max(10_000, 10 * batch_size)``."""
    return max(DEFAULT_SAMPLE_FLOOR, SAMPLE_PER_SLOT * int(batch_size))


@dataclass(frozen=True, eq=False)
class PoolChunk:
    """Rows of a pool: their global positions, ids and per-item scoring arrays.

    Attributes
    ----------
    index : ndarray of shape (n,), int64
        Global row positions (0-based over the whole pool, in pool order).
    ids : ndarray of shape (n,), optional
        Item ids; the batch reports ``index`` when they are missing.
    probas, X, costs, committee_probas, committee_predictions : optional
        As in :class:`ScoringContext`, for these rows only (committee arrays
        keep the members on axis 0).
    """

    index: npt.NDArray[np.int64]
    ids: npt.NDArray[Any] | None = None
    probas: FloatArray | None = None
    X: npt.NDArray[Any] | None = None
    costs: FloatArray | None = None
    committee_probas: FloatArray | None = None
    committee_predictions: FloatArray | None = None

    def __post_init__(self) -> None:
        index = np.asarray(self.index, dtype=np.int64)
        if index.ndim != 1:
            raise InvalidInputError(
                f"PoolChunk.index must be 1-D. Got shape {index.shape} instead.",
                hint="Pass the global row positions of the chunk's rows.",
            )
        object.__setattr__(self, "index", index)
        n = index.shape[0]
        for name in ("ids", *_PER_ITEM):
            value = getattr(self, name)
            if value is not None and np.shape(value)[0] != n:
                raise InvalidInputError(
                    f"PoolChunk.{name} must have one row per index entry ({n}). "
                    f"Got shape {np.shape(value)} instead.",
                    hint="Slice every array of the chunk to the same rows.",
                )
        for name in _PER_MEMBER:
            value = getattr(self, name)
            if value is not None and np.shape(value)[1] != n:
                raise InvalidInputError(
                    f"PoolChunk.{name} must have one column per index entry ({n}). "
                    f"Got shape {np.shape(value)} instead.",
                    hint="Committee arrays are (members, items, ...).",
                )

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def take(self, rows: IndexArray) -> PoolChunk:
        """The chunk restricted to local positions ``rows`` (copies)."""
        values: dict[str, Any] = {"index": self.index[rows]}
        for name in ("ids", *_PER_ITEM):
            value = getattr(self, name)
            values[name] = None if value is None else np.asarray(value)[rows]
        for name in _PER_MEMBER:
            value = getattr(self, name)
            values[name] = None if value is None else np.asarray(value)[:, rows]
        return PoolChunk(**values)

    @staticmethod
    def concat(chunks: Sequence[PoolChunk]) -> PoolChunk:
        """Rows of every chunk, in the given order; they must carry the same arrays."""
        if not chunks:
            raise InvalidInputError(
                "PoolChunk.concat needs at least one chunk. Got none.",
                hint="Read at least one row of the pool.",
            )
        # Empty chunks (every row excluded) may lack arrays that need a width.
        chunks = [c for c in chunks if len(c)] or [chunks[0]]
        if len(chunks) == 1:
            return chunks[0]
        values: dict[str, Any] = {"index": np.concatenate([c.index for c in chunks])}
        for name in ("ids", *_PER_ITEM, *_PER_MEMBER):
            parts = [getattr(c, name) for c in chunks]
            present = [p is not None for p in parts]
            if any(present) and not all(present):
                raise InvalidInputError(
                    f"Every chunk must carry {name!r} or none may. Got it in "
                    f"{sum(present)} of {len(parts)} chunks.",
                    hint="Score every chunk with the same function.",
                )
            axis = 1 if name in _PER_MEMBER else 0
            values[name] = (
                np.concatenate([np.asarray(p) for p in parts], axis=axis)
                if all(present)
                else None
            )
        return PoolChunk(**values)

    def sorted(self) -> PoolChunk:
        """The rows in global order (the order the second stage reads them in)."""
        order = np.argsort(self.index, kind="stable")
        if np.array_equal(order, np.arange(order.size)):
            return self
        return self.take(order)


@dataclass(frozen=True, eq=False)
class ShortlistPlan:
    """What every chunk reduction of one batch needs (picklable for Dask).

    Build it with :func:`make_plan`, which draws ``key_seed`` from the batch's
    generator.
    """

    policy: BatchPolicy
    batch_size: int
    key_seed: int
    sample_size: int
    X_labeled: FloatArray | None = None
    labeled_correct: npt.NDArray[np.bool_] | None = None
    X_failures: FloatArray | None = None

    @cached_property
    def strategies(self) -> list[Strategy]:
        """One strategy per component, built once."""
        return [c.make_strategy() for c in self.policy.components]

    def context(self, chunk: PoolChunk) -> ScoringContext:
        """The scoring context of ``chunk``'s rows, with its row keys."""
        return ScoringContext(
            probas=chunk.probas,
            X=chunk.X,
            committee_probas=chunk.committee_probas,
            committee_predictions=chunk.committee_predictions,
            X_labeled=self.X_labeled,
            labeled_correct=self.labeled_correct,
            X_failures=self.X_failures,
            costs=chunk.costs,
            row_keys=row_keys(self.key_seed, chunk.index),
        )


def make_plan(
    policy: BatchPolicy,
    *,
    batch_size: int,
    rng: RandomState = None,
    sample_size: int | None = None,
    X_labeled: Any = None,
    labeled_correct: Any = None,
    X_failures: Any = None,
) -> tuple[ShortlistPlan, np.random.Generator]:
    """The plan of one batch and the generator its second stage continues with.

    The key seed is the generator's first draw, so the same ``rng`` seed gives
    the same keys in every path.
    """
    generator = check_rng(rng)
    batch_size = check_int(batch_size, param="batch_size", owner="make_plan", low=1)
    size = (
        shortlist_sample_size(batch_size)
        if sample_size is None
        else check_int(sample_size, param="sample_size", owner="make_plan", low=1)
    )
    plan = ShortlistPlan(
        policy=policy,
        batch_size=batch_size,
        key_seed=key_seed_from(generator),
        sample_size=max(size, batch_size),
        X_labeled=X_labeled,
        labeled_correct=labeled_correct,
        X_failures=X_failures,
    )
    return plan, generator


def _keep_for(
    strategy: Strategy,
    context: ScoringContext,
    index: npt.NDArray[np.int64],
    n_keep: int,
    predicted: IndexArray | None,
) -> list[IndexArray]:
    rows = strategy.preselect(context, n_keep=n_keep, index=index)
    if rows is None:
        return []
    keep = [rows]
    if predicted is not None:  # class quotas: the best of every predicted class
        for label in np.unique(predicted):
            members = np.flatnonzero(predicted == label)
            sub = _sub_context(context, members)
            found = strategy.preselect(sub, n_keep=n_keep, index=index[members])
            if found is not None:
                keep.append(members[found])
    return keep


def _sub_context(context: ScoringContext, rows: IndexArray) -> ScoringContext:
    values: dict[str, Any] = {}
    for name in (*_PER_ITEM, "row_keys"):
        value = getattr(context, name)
        values[name] = None if value is None else np.asarray(value)[rows]
    for name in _PER_MEMBER:
        value = getattr(context, name)
        values[name] = None if value is None else np.asarray(value)[:, rows]
    return replace(context, **values)


def reduce_chunk(plan: ShortlistPlan, chunk: PoolChunk) -> PoolChunk:
    """The rows of ``chunk`` that the batch may still need (the chunk function).

    Pure: it reads only ``plan`` and ``chunk``, so it runs the same in this
    process and as a Dask task. The result holds every row of the chunk that
    belongs to the whole pool's shortlist (and no more than the chunk's own
    shortlist), sorted by global position.
    """
    if len(chunk) <= plan.sample_size:
        return chunk.sorted()
    context = plan.context(chunk)
    assert context.row_keys is not None
    keep = [smallest_keys(context.row_keys, chunk.index, plan.sample_size)]
    predicted = None
    if plan.policy.class_quotas and chunk.probas is not None:
        predicted = np.asarray(np.argmax(chunk.probas, axis=1), dtype=np.intp)
    for strategy in plan.strategies:
        if strategy.available(context):
            keep.extend(
                _keep_for(strategy, context, chunk.index, plan.batch_size, predicted)
            )
    rows = np.unique(np.concatenate(keep))
    return chunk.take(rows).sorted()


def merge_shortlists(plan: ShortlistPlan, parts: Iterable[PoolChunk]) -> PoolChunk:
    """One shortlist from the shortlists of disjoint chunks (any order)."""
    return reduce_chunk(plan, PoolChunk.concat(list(parts)))
