"""Uncertainty scores read from calibrated class probabilities.

References
----------
Settles, B. (2009). Active Learning Literature Survey. University of
Wisconsin-Madison, Computer Sciences Technical Report 1648, section 3.1.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from labelwise._typing import FloatArray, IndexArray, RandomState
from labelwise._validation import check_int, check_probas, check_rng
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = [
    "ConfidenceBuckets",
    "Entropy",
    "LeastConfidence",
    "Margin",
    "confidence_bucket_scores",
    "confidence_buckets_of",
    "entropy",
    "least_confidence",
    "margin",
]


def least_confidence(probas: FloatArray) -> FloatArray:
    """One minus the top class probability.

    Parameters
    ----------
    probas : ndarray of shape (n, k)
        Class probabilities; rows sum to 1.

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``[0, 1 - 1/k]``; higher means less confident.
    """
    p = check_probas(probas)
    return np.asarray(1.0 - p.max(axis=1), dtype=np.float64)


def margin(probas: FloatArray) -> FloatArray:
    """One minus the gap between the two most probable classes.

    Computed with ``np.partition`` (no full sort).

    Parameters
    ----------
    probas : ndarray of shape (n, k)
        Class probabilities; rows sum to 1.

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``[0, 1]``; 1 means the top two classes are tied.
    """
    p = check_probas(probas)
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return np.asarray(1.0 - (top2[:, 1] - top2[:, 0]), dtype=np.float64)


def entropy(probas: FloatArray) -> FloatArray:
    """Shannon entropy of the class distribution, normalised to ``[0, 1]``.

    Parameters
    ----------
    probas : ndarray of shape (n, k)
        Class probabilities; rows sum to 1.

    Returns
    -------
    scores : ndarray of shape (n,)
        ``-sum(p log p) / log k``.
    """
    p = check_probas(probas)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.clip(p, 1e-300, None)), 0.0)
    return np.asarray(-terms.sum(axis=1) / np.log(p.shape[1]), dtype=np.float64)


def confidence_buckets_of(probas: FloatArray, n_buckets: int = 10) -> np.ndarray:
    """Bucket index of each item by its top-class probability.

    The attainable range ``[1/k, 1]`` is cut into ``n_buckets`` equal-width bins
    (for a binary model: 50-55 %, ..., 95-100 %); bucket 0 holds the least
    confident items, next to the decision boundary.
    """
    p = check_probas(probas)
    k = p.shape[1]
    confidence = p.max(axis=1)
    position = (confidence - 1.0 / k) / (1.0 - 1.0 / k)
    buckets = np.clip((position * n_buckets).astype(np.intp), 0, n_buckets - 1)
    return np.asarray(buckets, dtype=np.intp)


def confidence_bucket_scores(
    probas: FloatArray,
    *,
    n_buckets: int = 10,
    rng: RandomState = None,
    priority: FloatArray | None = None,
) -> FloatArray:
    """Stratified scores: taking the top ``b`` samples every bucket uniformly.

    Each item gets a uniformly random rank inside its confidence bucket
    (:func:`confidence_buckets_of`). Scores order items by that rank first, so
    the top ``b`` items hold (up to one) the same number from every non-empty
    bucket, drawn uniformly inside it; among equal ranks, buckets nearer the
    decision boundary come first. Seed 004, pattern 1.

    ``priority`` (one uniform key per item, e.g. ``context.row_keys``) orders
    the items inside a bucket, smallest first; without it ``rng`` draws one.

    Returns
    -------
    scores : ndarray of shape (n,)
        ``-(rank within bucket) - bucket / n_buckets``; higher = label first.
    """
    buckets = confidence_buckets_of(probas, n_buckets)
    n = buckets.shape[0]
    keys = check_rng(rng).random(n) if priority is None else np.asarray(priority)
    order = np.lexsort(np.vstack([keys, buckets.astype(np.float64)]))
    sorted_buckets = buckets[order]
    starts = np.searchsorted(sorted_buckets, sorted_buckets, side="left")
    rank = np.empty(n, dtype=np.float64)
    rank[order] = np.arange(n) - starts
    return np.asarray(-rank - buckets / n_buckets, dtype=np.float64)


class _ProbaStrategy(Strategy):
    requires: ClassVar[tuple[str, ...]] = ("probas",)
    reads_probas: ClassVar[bool] = True


class LeastConfidence(_ProbaStrategy):
    """Least-confidence sampling: :func:`least_confidence` on ``context.probas``."""

    name = "least_confidence"
    pointwise = True

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.probas is not None
        return least_confidence(context.probas)


class Margin(_ProbaStrategy):
    """Margin sampling: :func:`margin` on ``context.probas``."""

    name = "margin"
    pointwise = True

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.probas is not None
        return margin(context.probas)


class Entropy(_ProbaStrategy):
    """Entropy sampling: :func:`entropy` on ``context.probas``."""

    name = "entropy"
    pointwise = True

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.probas is not None
        return entropy(context.probas)


class ConfidenceBuckets(_ProbaStrategy):
    """Uniform sampling per confidence bucket: :func:`confidence_bucket_scores`.

    Parameters
    ----------
    n_buckets : int, default=10
        Number of equal-width confidence bins.
    """

    name = "confidence_buckets"
    uses_rng = True

    def __init__(self, n_buckets: int = 10) -> None:
        self.n_buckets = check_int(
            n_buckets, param="n_buckets", owner="ConfidenceBuckets", low=1, high=1000
        )

    def params(self) -> dict[str, object]:
        return {"n_buckets": self.n_buckets}

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.probas is not None
        return confidence_bucket_scores(
            context.probas,
            n_buckets=self.n_buckets,
            rng=rng,
            priority=context.row_keys,
        )

    def preselect(
        self, context: ScoringContext, *, n_keep: int, index: IndexArray
    ) -> IndexArray | None:
        """The ``n_keep`` smallest-key rows of each confidence bucket.

        The top ``b`` scores of the whole pool are the ``b`` first of some
        buckets in key order, so they are among these.
        """
        assert context.probas is not None and context.row_keys is not None
        buckets = confidence_buckets_of(context.probas, self.n_buckets)
        keys = context.row_keys
        # Sort by (bucket, key, index) and keep each bucket's first n_keep.
        order = np.lexsort((index, keys, buckets))
        sorted_buckets = buckets[order]
        starts = np.searchsorted(sorted_buckets, sorted_buckets, side="left")
        rank = np.arange(order.size) - starts
        return np.asarray(np.sort(order[rank < n_keep]), dtype=np.intp)
