"""Uncertainty tempered by representativeness.

Pure uncertainty sampling piles up near-identical hard items and outliers. Two
remedies over the geometry features ``X``:

- :func:`representative_scores` clusters the most uncertain candidates and
  puts the most uncertain item of each cluster first (representative sampling
  within uncertainty, seed 004 pattern 3);
- :func:`information_density_scores` multiplies uncertainty by a k-nearest-
  neighbour density, so items in dense regions outrank isolated outliers;
- :func:`weighted_cluster_scores` clusters the candidates with k-means weighted
  by uncertainty and takes the item nearest each centre (CLUE): typical items
  of the uncertain regions rather than the most uncertain, often odd, ones.

References
----------
Settles, B. and Craven, M. (2008). An analysis of active learning strategies for
sequence labeling tasks. EMNLP, 1070-1079 (information density).

Prabhu, V., Chandrasekaran, A., Saenko, K. and Hoffman, J. (2021). Active
domain adaptation via clustering uncertainty-weighted embeddings. ICCV,
8505-8514 (CLUE).

Xu, Z., Akella, R. and Zhang, Y. (2007). Incorporating diversity and density in
active learning for relevance feedback. ECIR, 246-257 (representative
sampling: cluster the uncertain candidates, label one per cluster).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from sklearn.neighbors import NearestNeighbors

from labelwise._typing import FloatArray, IndexArray, RandomState
from labelwise._validation import (
    check_array_2d,
    check_in_options,
    check_int,
    check_interval,
    check_rng,
)
from labelwise.exceptions import InvalidInputError
from labelwise.strategies._base import ScoringContext, Strategy
from labelwise.strategies._diversity import (
    _check_positions,
    _distinct_clusters,
    _fit_kmeans,
    _fit_kmeans_fast,
)
from labelwise.strategies._uncertainty import entropy, least_confidence, margin

__all__ = [
    "EXACT_KMEANS_LIMIT",
    "WEIGHTED_EXACT_LIMIT",
    "DensityWeighted",
    "Representative",
    "WeightedClusters",
    "information_density_scores",
    "knn_density",
    "representative_scores",
    "weighted_cluster_scores",
]

#: The uncertainty measures the strategies here accept, by name.
_UNCERTAINTY: dict[str, Callable[[FloatArray], FloatArray]] = {
    "entropy": entropy,
    "least_confidence": least_confidence,
    "margin": margin,
}
#: Batch size assumed by Representative when the policy passes none.
DEFAULT_BATCH = 10
#: Largest ``candidates x clusters`` that representative_scores clusters with
#: exact k-means (``n_init`` greedy k-means++ restarts, Lloyd to convergence).
#: Above it the fit is :func:`labelwise.strategies._diversity._fit_kmeans_fast`
#: (one plain k-means++ seeding, at most 5 Lloyd iterations). 90,000 keeps
#: every representative fit of issue #10's efficiency table exact: the previous
#: default policy's at batches 5 to 150 (at most 90 clusters over 900
#: candidates, 81,000; the current default's at most 60 over 600) and the
#: single-strategy ``representative`` runs at batches 10 and 50 (at most
#: 25,000). Batch 1,000 of the default policy (400 clusters over 4,000
#: candidates, 1.6 M) takes the fast path.
EXACT_KMEANS_LIMIT = 90_000
#: The same for :func:`weighted_cluster_scores`: 250,000 covers issue #10's
#: benchmark (at most 60 clusters over 3,000 candidates), so its results stand.
WEIGHTED_EXACT_LIMIT = 250_000
#: Query rows per kneighbors call.
_CHUNK_ROWS = 8_192
#: Score offsets of the candidate and representative tiers; uncertainty lies in
#: [0, 1], so tiers 2 apart never interleave.
_CANDIDATE_OFFSET = 2.0
_REPRESENTATIVE_OFFSET = 4.0


def _uncertainty(probas: FloatArray, measure: str, *, owner: str) -> FloatArray:
    measure = check_in_options(
        measure, param="uncertainty", owner=owner, options=_UNCERTAINTY
    )
    scores = _UNCERTAINTY[measure](probas)
    return np.clip(scores, 0.0, 1.0)


def _check_same_rows(X: Any, n_items: int) -> FloatArray:
    points = check_array_2d(X)
    if points.shape[0] != n_items:
        raise InvalidInputError(
            f"X must have one row per pool item ({n_items}, the rows of probas). "
            f"Got {points.shape[0]} rows.",
            hint="Pass the features and the probabilities of the same pool, in "
            "the same order.",
        )
    return points


def _top_uncertain(
    u: FloatArray, eligible: npt.NDArray[np.bool_], size: int
) -> IndexArray:
    """The ``size`` most uncertain eligible positions, in decreasing uncertainty.

    Stable: ties keep pool order, so the result does not depend on how the pool
    was chunked when the uncertainties are distinct. This order is also what
    k-means sees, so the clustering does not depend on the order of the pool.
    """
    order = np.argsort(-u, kind="stable")
    return np.asarray(order[eligible[order]][:size], dtype=np.intp)


def _cluster(
    points: FloatArray,
    n_clusters: int,
    *,
    seed: int,
    n_init: int,
    exact_limit: int | None,
    sample_weight: FloatArray | None = None,
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Exact k-means while ``len(points) x n_clusters <= exact_limit``, else fast."""
    if exact_limit is None or len(points) * n_clusters <= exact_limit:
        return _fit_kmeans(
            points, n_clusters, seed=seed, n_init=n_init, sample_weight=sample_weight
        )
    return _fit_kmeans_fast(points, n_clusters, seed=seed, sample_weight=sample_weight)


def _tiers(
    u: FloatArray,
    candidates: IndexArray,
    picks: IndexArray,
    eligible: npt.NDArray[np.bool_],
) -> FloatArray:
    """Picks ``u + 4``, other candidates ``u + 2``, the rest ``u``; excluded -1."""
    scores = u.copy()
    scores[candidates] += _CANDIDATE_OFFSET
    scores[picks] += _REPRESENTATIVE_OFFSET - _CANDIDATE_OFFSET
    scores[~eligible] = -1.0
    return np.asarray(scores, dtype=np.float64)


def _most_uncertain_rows(
    probas: FloatArray, measure: str, owner: str, index: IndexArray, size: int
) -> IndexArray:
    """Preselect: the ``size`` most uncertain rows of a chunk (ties by index),
    a superset of the candidates :func:`_top_uncertain` takes from the pool."""
    from labelwise._rowkeys import top_rows

    u = _uncertainty(probas, measure, owner=owner)
    return top_rows(u, np.zeros_like(u), index, size)


def representative_scores(
    probas: FloatArray,
    X: FloatArray,
    batch_size: int,
    *,
    uncertainty: str = "margin",
    candidate_factor: int = 10,
    n_init: int = 3,
    rng: RandomState = None,
    exclude: IndexArray | None = None,
    exact_limit: int | None = EXACT_KMEANS_LIMIT,
) -> FloatArray:
    """Representative sampling within uncertainty, encoded as three score tiers.

    The ``candidate_factor * batch_size`` most uncertain items are the
    candidates. They are clustered on ``X`` into ``batch_size`` clusters with
    k-means (fitted on the candidates in decreasing uncertainty, seeded from
    ``rng``); the most uncertain candidate of each cluster is its
    representative. When ``batch_size`` is at least the number of candidates,
    every candidate is a representative.

    K-means is exact (``n_init`` greedy k-means++ restarts, Lloyd to
    convergence) while ``candidates x clusters <= exact_limit``. Above it,
    where that fit costs seconds (600 clusters over 6,000 candidates: about
    2 s), it is one plain k-means++ seeding followed by at most 5 Lloyd
    iterations: a tenth of the cost or less, a k-means objective within a few
    per cent of the exact fit's, still one representative per cluster, and
    deterministic for a given ``rng``.

    Parameters
    ----------
    probas : ndarray of shape (n, k)
        Class probabilities of the pool.
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    batch_size : int
        Number of representatives (clusters) wanted.
    uncertainty : {"margin", "entropy", "least_confidence"}, default="margin"
        Uncertainty measure, from :mod:`labelwise.strategies`.
    candidate_factor : int, default=10
        Candidates per batch slot.
    n_init : int, default=3
        Number of k-means restarts.
    rng : numpy.random.Generator, int or None
        Seeds k-means.
    exclude : ndarray of shape (s,), int, optional
        Pool positions already in the batch: never candidates, score ``-1``.
    exact_limit : int or None, default=EXACT_KMEANS_LIMIT
        Largest ``candidates x clusters`` clustered with exact k-means
        (90,000); ``None`` always clusters exactly.

    Returns
    -------
    scores : ndarray of shape (n,)
        ``u + 4`` for representatives, ``u + 2`` for other candidates and ``u``
        for the rest, where ``u`` in ``[0, 1]`` is the uncertainty: the tiers
        never interleave and each is ordered by uncertainty. Excluded: ``-1``.

    References
    ----------
    Xu, Akella and Zhang (2007); seed 004, pattern 3.
    """
    owner = "representative_scores"
    u = _uncertainty(probas, uncertainty, owner=owner)
    n = u.shape[0]
    points = _check_same_rows(X, n)
    batch_size = check_int(batch_size, param="batch_size", owner=owner, low=0)
    factor = check_int(candidate_factor, param="candidate_factor", owner=owner, low=1)
    n_init = check_int(n_init, param="n_init", owner=owner, low=1, high=100)
    if exact_limit is not None:
        exact_limit = check_int(exact_limit, param="exact_limit", owner=owner, low=0)
    generator = check_rng(rng)
    seed = int(generator.integers(np.iinfo(np.int32).max))

    eligible = np.ones(n, dtype=bool)
    if exclude is not None:
        eligible[_check_positions(exclude, n, name="exclude")] = False
    candidates = _top_uncertain(u, eligible, factor * batch_size)
    if batch_size >= len(candidates):
        representatives = candidates
    else:
        _, labels = _cluster(
            points[candidates],
            batch_size,
            seed=seed,
            n_init=n_init,
            exact_limit=exact_limit,
        )
        # np.unique gives the first occurrence of each label: the most uncertain.
        _, first = np.unique(labels, return_index=True)
        representatives = candidates[first]
    return _tiers(u, candidates, representatives, eligible)


def weighted_cluster_scores(
    probas: FloatArray | None,
    X: FloatArray,
    batch_size: int,
    *,
    uncertainty: str = "entropy",
    candidate_factor: int = 10,
    min_candidates: int = 3000,
    n_init: int = 1,
    rng: RandomState = None,
    exclude: IndexArray | None = None,
    exact_limit: int | None = WEIGHTED_EXACT_LIMIT,
) -> FloatArray:
    """CLUE: k-means weighted by uncertainty, the item nearest each centre first.

    The candidates are the ``max(candidate_factor * batch_size,
    min_candidates)`` most uncertain items (every item of a smaller pool, as in
    CLUE). They are clustered on ``X`` into ``batch_size`` clusters by k-means
    with the uncertainty as sample weight, so centres sit in uncertain regions
    and dense ones; the candidate nearest each centre is picked. Unlike
    :func:`representative_scores` (the most uncertain item per cluster), the
    picks are typical items of the uncertain regions, which matters where the
    most uncertain items are outliers (short or odd texts).

    K-means is exact (``n_init`` k-means++ restarts, Lloyd to convergence)
    while ``candidates x clusters <= exact_limit``; above it (batch 1,000 of
    the default policy: 400 clusters over 4,000 candidates) it is the fast
    weighted fit of :func:`representative_scores` (one plain k-means++
    seeding, a few Lloyd iterations).

    Parameters
    ----------
    probas : ndarray of shape (n, k) or None
        Class probabilities of the pool. None (cold start: no model yet) gives
        every item weight 1: plain k-means over the pool, the item nearest each
        centre (typical items that cover the pool, TypiClust's cold-start
        remedy).
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    batch_size : int
        Number of picks (clusters) wanted.
    uncertainty : {"entropy", "margin", "least_confidence"}, default="entropy"
        Weight of each item, from :mod:`labelwise.strategies`.
    candidate_factor : int, default=10
        Candidates per batch slot, when that is more than ``min_candidates``.
    min_candidates : int, default=3000
        Fewest candidates (the whole pool when it is smaller).
    n_init : int, default=1
        Number of k-means restarts.
    rng : numpy.random.Generator, int or None
        Seeds k-means.
    exclude : ndarray of shape (s,), int, optional
        Pool positions already in the batch: never candidates, score ``-1``.
    exact_limit : int or None, default=WEIGHTED_EXACT_LIMIT
        Largest ``candidates x clusters`` clustered with exact k-means
        (250,000); ``None`` always clusters exactly.

    Returns
    -------
    scores : ndarray of shape (n,)
        ``u + 4`` for the picks, ``u + 2`` for other candidates and ``u`` for
        the rest (``u`` in ``[0, 1]``): the tiers never interleave. Excluded:
        ``-1``.

    References
    ----------
    Prabhu, Chandrasekaran, Saenko and Hoffman (2021), CLUE.
    """
    owner = "weighted_cluster_scores"
    if probas is None:
        points = check_array_2d(X)
        n = points.shape[0]
        check_in_options(
            uncertainty, param="uncertainty", owner=owner, options=_UNCERTAINTY
        )
        u = np.ones(n, dtype=np.float64)
    else:
        u = _uncertainty(probas, uncertainty, owner=owner)
        n = u.shape[0]
        points = _check_same_rows(X, n)
    batch_size = check_int(batch_size, param="batch_size", owner=owner, low=0)
    factor = check_int(candidate_factor, param="candidate_factor", owner=owner, low=1)
    floor = check_int(min_candidates, param="min_candidates", owner=owner, low=1)
    n_init = check_int(n_init, param="n_init", owner=owner, low=1, high=100)
    if exact_limit is not None:
        exact_limit = check_int(exact_limit, param="exact_limit", owner=owner, low=0)
    generator = check_rng(rng)
    seed = int(generator.integers(np.iinfo(np.int32).max))

    eligible = np.ones(n, dtype=bool)
    if exclude is not None:
        eligible[_check_positions(exclude, n, name="exclude")] = False
    candidates = _top_uncertain(u, eligible, max(factor * batch_size, floor))
    rows = points[candidates]
    n_clusters = _distinct_clusters(rows, batch_size)
    if n_clusters >= len(candidates):
        picks = candidates
    elif n_clusters >= 1:
        # A tiny floor keeps every weight positive (k-means needs some mass).
        centres, labels = _cluster(
            rows,
            n_clusters,
            seed=seed,
            n_init=n_init,
            exact_limit=exact_limit,
            sample_weight=u[candidates] + 1e-9,
        )
        gap = rows - centres[labels]
        distance = np.einsum("ij,ij->i", gap, gap)
        # Per cluster, its member nearest the centre (ties: the more uncertain,
        # which comes first in the candidate order).
        order = np.lexsort((distance, labels))
        _, first = np.unique(labels[order], return_index=True)
        picks = candidates[order[first]]
    else:
        picks = candidates[:0]
    return _tiers(u, candidates, picks, eligible)


def knn_density(
    X: FloatArray,
    *,
    n_neighbors: int = 10,
    sample_size: int = 2000,
    rng: RandomState = None,
) -> FloatArray:
    """Density of each item: ``1 / (1 + mean distance to its nearest neighbours)``.

    Neighbours are searched in a reference sample of at most ``sample_size`` rows
    drawn with ``rng`` (every row when ``n <= sample_size``, which makes the
    result deterministic); an item never counts itself. The pool is queried in
    chunks with :class:`sklearn.neighbors.NearestNeighbors`, so memory is
    ``O(chunk * n_neighbors)`` beyond ``X`` and the sample, never ``N x N``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    n_neighbors : int, default=10
        Neighbours averaged; reduced to ``sample - 1`` for tiny pools.
    sample_size : int, default=2000
        Largest reference sample.
    rng : numpy.random.Generator, int or None
        Draws the reference sample when ``n > sample_size``.

    Returns
    -------
    density : ndarray of shape (n,)
        In ``(0, 1]``; larger in dense regions.

    References
    ----------
    Settles and Craven (2008), equation for information density (with a
    distance-based similarity).
    """
    owner = "knn_density"
    points = check_array_2d(X)
    n = points.shape[0]
    n_neighbors = check_int(n_neighbors, param="n_neighbors", owner=owner, low=1)
    sample_size = check_int(sample_size, param="sample_size", owner=owner, low=2)
    generator = check_rng(rng)
    if n > sample_size:
        reference = np.sort(generator.choice(n, sample_size, replace=False))
    else:
        reference = np.arange(n, dtype=np.intp)
    k = min(n_neighbors, len(reference) - 1)
    density = np.ones(n, dtype=np.float64)
    if k < 1:
        return density

    index = NearestNeighbors(n_neighbors=k + 1).fit(points[reference])
    for start in range(0, n, _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, n)
        dist, ind = index.kneighbors(points[start:stop], return_distance=True)
        # Drop the item itself when it is in the sample, else the farthest one.
        keep = reference[ind] != np.arange(start, stop)[:, np.newaxis]
        keep[keep.all(axis=1), -1] = False
        mean_dist = dist[keep].reshape(stop - start, k).mean(axis=1)
        density[start:stop] = 1.0 / (1.0 + mean_dist)
    return density


def information_density_scores(
    probas: FloatArray,
    X: FloatArray,
    *,
    uncertainty: str = "margin",
    beta: float = 1.0,
    n_neighbors: int = 10,
    sample_size: int = 2000,
    rng: RandomState = None,
) -> FloatArray:
    """Information density: ``uncertainty * density ** beta``.

    Parameters
    ----------
    probas : ndarray of shape (n, k)
        Class probabilities of the pool.
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    uncertainty : {"margin", "entropy", "least_confidence"}, default="margin"
        Uncertainty measure.
    beta : float, default=1.0
        Weight of the density term; 0 gives plain uncertainty.
    n_neighbors, sample_size, rng
        Passed to :func:`knn_density`.

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``[0, 1]``.

    References
    ----------
    Settles and Craven (2008), section 3.4.
    """
    owner = "information_density_scores"
    u = _uncertainty(probas, uncertainty, owner=owner)
    points = _check_same_rows(X, u.shape[0])
    beta = check_interval(beta, param="beta", owner=owner, low=0.0)
    density = knn_density(
        points, n_neighbors=n_neighbors, sample_size=sample_size, rng=rng
    )
    return np.asarray(u * density**beta, dtype=np.float64)


class Representative(Strategy):
    """Representative sampling within uncertainty: :func:`representative_scores`.

    Parameters
    ----------
    uncertainty : {"margin", "entropy", "least_confidence"}, default="margin"
        Uncertainty measure that picks the candidates.
    candidate_factor : int, default=10
        Candidates per batch slot.
    n_init : int, default=3
        Number of k-means restarts (exact k-means only: see
        :func:`representative_scores` and :data:`EXACT_KMEANS_LIMIT`).

    The number of clusters is the ``batch_size`` the policy passes, or
    :data:`DEFAULT_BATCH` (10) without one. Items in ``context.selected`` are
    never candidates.
    """

    name = "representative"
    requires: ClassVar[tuple[str, ...]] = ("probas", "X")
    uses_rng = True
    reads_probas = True

    def __init__(
        self, uncertainty: str = "margin", candidate_factor: int = 10, n_init: int = 3
    ) -> None:
        owner = "Representative"
        self.uncertainty = check_in_options(
            uncertainty, param="uncertainty", owner=owner, options=_UNCERTAINTY
        )
        self.candidate_factor = check_int(
            candidate_factor, param="candidate_factor", owner=owner, low=1, high=1000
        )
        self.n_init = check_int(n_init, param="n_init", owner=owner, low=1, high=100)

    def params(self) -> dict[str, Any]:
        return {
            "uncertainty": self.uncertainty,
            "candidate_factor": self.candidate_factor,
            "n_init": self.n_init,
        }

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.probas is not None
        assert context.X is not None
        selected = context.selected if context.has("selected") else None
        return representative_scores(
            context.probas,
            context.X,
            DEFAULT_BATCH if batch_size is None else batch_size,
            uncertainty=self.uncertainty,
            candidate_factor=self.candidate_factor,
            n_init=self.n_init,
            rng=rng,
            exclude=selected,
        )

    def preselect(
        self, context: ScoringContext, *, n_keep: int, index: IndexArray
    ) -> IndexArray | None:
        """The ``candidate_factor * n_keep`` most uncertain rows (ties by index).

        The candidates of a batch of ``b' <= n_keep`` slots with up to
        ``n_keep - b'`` rows already chosen are among them.
        """
        assert context.probas is not None
        size = self.candidate_factor * n_keep
        return _most_uncertain_rows(
            context.probas, self.uncertainty, "Representative", index, size
        )


class WeightedClusters(Strategy):
    """CLUE, uncertainty-weighted clustering: :func:`weighted_cluster_scores`.

    Parameters
    ----------
    uncertainty : {"entropy", "margin", "least_confidence"}, default="entropy"
        Weight of each item in the clustering.
    candidate_factor : int, default=10
        Candidates per batch slot, when more than ``min_candidates``.
    min_candidates : int, default=3000
        Fewest candidates (the whole pool when smaller).
    n_init : int, default=1
        Number of k-means restarts.

    The number of clusters is the ``batch_size`` the policy passes, or
    :data:`DEFAULT_BATCH` (10) without one. Items in ``context.selected`` are
    never candidates. It needs only ``X``: before a model exists it clusters
    the pool unweighted (cold start, see :func:`weighted_cluster_scores`).
    """

    name = "weighted_clusters"
    requires: ClassVar[tuple[str, ...]] = ("X",)
    optional: ClassVar[tuple[str, ...]] = ("probas",)
    uses_rng = True
    reads_probas = True

    def __init__(
        self,
        uncertainty: str = "entropy",
        candidate_factor: int = 10,
        min_candidates: int = 3000,
        n_init: int = 1,
    ) -> None:
        owner = "WeightedClusters"
        self.uncertainty = check_in_options(
            uncertainty, param="uncertainty", owner=owner, options=_UNCERTAINTY
        )
        self.candidate_factor = check_int(
            candidate_factor, param="candidate_factor", owner=owner, low=1, high=1000
        )
        self.min_candidates = check_int(
            min_candidates, param="min_candidates", owner=owner, low=1, high=1_000_000
        )
        self.n_init = check_int(n_init, param="n_init", owner=owner, low=1, high=100)

    def params(self) -> dict[str, Any]:
        return {
            "uncertainty": self.uncertainty,
            "candidate_factor": self.candidate_factor,
            "min_candidates": self.min_candidates,
            "n_init": self.n_init,
        }

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.X is not None
        selected = context.selected if context.has("selected") else None
        return weighted_cluster_scores(
            context.probas if context.has("probas") else None,
            context.X,
            DEFAULT_BATCH if batch_size is None else batch_size,
            uncertainty=self.uncertainty,
            candidate_factor=self.candidate_factor,
            min_candidates=self.min_candidates,
            n_init=self.n_init,
            rng=rng,
            exclude=selected,
        )

    def preselect(
        self, context: ScoringContext, *, n_keep: int, index: IndexArray
    ) -> IndexArray | None:
        """The ``max(factor * n_keep, min_candidates + n_keep)`` most uncertain rows.

        ``factor`` is ``candidate_factor``. A batch of ``b' <= n_keep`` slots
        with up to ``n_keep - b'`` rows already chosen takes as candidates the
        ``max(factor * b', min_candidates)`` most uncertain rows not chosen;
        they are among these (ties by index). With the floor, the chosen rows
        can push up to ``n_keep - 1`` rows below it into the candidates, hence
        ``min_candidates + n_keep``.
        """
        if context.probas is None:
            return None  # cold start: clusters the uniform sample
        size = max(self.candidate_factor * n_keep, self.min_candidates + n_keep)
        return _most_uncertain_rows(
            context.probas, self.uncertainty, "WeightedClusters", index, size
        )


class DensityWeighted(Strategy):
    """Information density (Settles and Craven 2008).

    Scores with :func:`information_density_scores`.

    Parameters
    ----------
    uncertainty : {"margin", "entropy", "least_confidence"}, default="margin"
        Uncertainty measure.
    beta : float, default=1.0
        Exponent of the density term.
    n_neighbors : int, default=10
        Neighbours averaged by the density.
    sample_size : int, default=2000
        Largest reference sample for the density; with ``n <= sample_size`` the
        scores do not depend on ``rng``.
    """

    name = "density_weighted"
    requires: ClassVar[tuple[str, ...]] = ("probas", "X")
    uses_rng = True
    reads_probas = True

    def __init__(
        self,
        uncertainty: str = "margin",
        beta: float = 1.0,
        n_neighbors: int = 10,
        sample_size: int = 2000,
    ) -> None:
        owner = "DensityWeighted"
        self.uncertainty = check_in_options(
            uncertainty, param="uncertainty", owner=owner, options=_UNCERTAINTY
        )
        self.beta = check_interval(beta, param="beta", owner=owner, low=0.0, high=10.0)
        self.n_neighbors = check_int(
            n_neighbors, param="n_neighbors", owner=owner, low=1, high=1000
        )
        self.sample_size = check_int(
            sample_size, param="sample_size", owner=owner, low=2
        )

    def params(self) -> dict[str, Any]:
        return {
            "uncertainty": self.uncertainty,
            "beta": self.beta,
            "n_neighbors": self.n_neighbors,
            "sample_size": self.sample_size,
        }

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.probas is not None
        assert context.X is not None
        return information_density_scores(
            context.probas,
            context.X,
            uncertainty=self.uncertainty,
            beta=self.beta,
            n_neighbors=self.n_neighbors,
            sample_size=self.sample_size,
            rng=rng,
        )
