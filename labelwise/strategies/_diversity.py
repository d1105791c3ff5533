"""Diversity: cover the feature space instead of piling up similar items.

Two scorers over the geometry features ``X``:

- :func:`kcenter_greedy_scores`, the greedy k-center (core-set) selection, which
  keeps one running "distance to the nearest centre" vector and updates it with
  one float32 matrix-vector product per pick, computing exact distances only for
  the rows the new centre can bring closer (never ``N x N``);
- :func:`cluster_quota_scores`, which clusters the pool with k-means and ranks
  items so that the top ``b`` give every cluster a share proportional to its size.

References
----------
Sener, O. and Savarese, S. (2018). Active learning for convolutional neural
networks: a core-set approach. ICLR.

Gonzalez, T. F. (1985). Clustering to minimize the maximum intercluster
distance. Theoretical Computer Science 38, 293-306.

Arthur, D. and Vassilvitskii, S. (2007). k-means++: the advantages of careful
seeding. SODA, 1027-1035 (the seeding of :func:`_fit_kmeans_fast`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.metrics import pairwise_distances_argmin_min
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from labelwise._typing import FloatArray, IndexArray, RandomState
from labelwise._validation import check_array_2d, check_int, check_rng
from labelwise.exceptions import InvalidInputError
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = [
    "ClusterQuota",
    "KCenter",
    "cluster_quota_scores",
    "kcenter_greedy_scores",
]

#: Rows per chunk when streaming distances over the pool: 16,384 rows of 64
#: features is an 8 MB temporary.
_CHUNK_ROWS = 16_384
#: Greedy picks made by KCenter when the policy passes no batch size.
DEFAULT_PICKS = 100
#: Clusters made by ClusterQuota when neither a batch size nor n_clusters is given.
DEFAULT_CLUSTERS = 10
#: Lloyd iterations of :func:`_fit_kmeans_fast` after its k-means++ seeding.
FAST_KMEANS_MAX_ITER = 5


def _check_features(
    array: Any, *, name: str, n_features: int | None = None
) -> FloatArray:
    arr = check_array_2d(array, name=name)
    if n_features is not None and arr.shape[1] != n_features:
        raise InvalidInputError(
            f"{name} must have the same number of features as X ({n_features}). "
            f"Got shape {arr.shape} instead.",
            hint="Compute every geometry array with the same embedder or feature "
            "pipeline.",
        )
    return arr


def _check_positions(positions: Any, n_items: int, *, name: str) -> IndexArray:
    """Validate pool positions (``context.selected``): 1-D ints in ``[0, n)``."""
    arr = np.asarray(positions)
    if arr.size == 0:
        return np.empty(0, dtype=np.intp)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(
            f"{name} must be a 1-D array of integer pool positions. Got dtype "
            f"{arr.dtype} and shape {arr.shape} instead.",
            hint="Pass positions 0..n-1 into the pool arrays, not item ids.",
        )
    if arr.min() < 0 or arr.max() >= n_items:
        raise InvalidInputError(
            f"{name} must hold positions in [0, {n_items}). Got values in "
            f"[{arr.min()}, {arr.max()}].",
            hint="Pass positions into the pool arrays, not item ids.",
        )
    return arr.astype(np.intp, copy=False)


def _distances_to_point(X: FloatArray, point: FloatArray) -> FloatArray:
    """Euclidean distance of every row of ``X`` to ``point``, in row chunks."""
    out = np.empty(X.shape[0], dtype=np.float64)
    for start in range(0, X.shape[0], _CHUNK_ROWS):
        diff = X[start : start + _CHUNK_ROWS] - point
        np.sqrt(np.einsum("ij,ij->i", diff, diff), out=out[start : start + _CHUNK_ROWS])
    return out


def _screen_bound(d: int) -> float:
    """Relative error bound of a float32 ``|x|^2 + |c|^2 - 2 x.c`` (times the norms).

    Rounding ``x`` and ``c`` to float32 and summing ``d`` products in float32
    errs by at most about ``(d + 4) u (|x|^2 + |c|^2)`` with ``u = 2^-24``;
    twice that (plus a constant) keeps the screen on the safe side.
    """
    return float(2.0 * (d + 8) * np.finfo(np.float32).eps)


class _Screen:
    """Float32 shadow of ``X`` that finds the rows a new centre can bring closer.

    The exact distances (float64 differences, :func:`_distances_to_point`) are
    computed only for rows whose screened squared distance, minus its error
    bound, is below their current nearest-centre distance; every other row
    provably keeps its distance. The result is the same, bit for bit, as the
    exact update of every row, at the cost of one float32 matrix-vector product
    per pick instead of an ``N x d`` float64 difference.
    """

    def __init__(self, points: FloatArray) -> None:
        self.points = points
        self.X32 = np.ascontiguousarray(points, dtype=np.float32)
        self.sq_norms = np.einsum("ij,ij->i", points, points)
        self.bound = _screen_bound(points.shape[1])

    def candidates(self, center: FloatArray, min_dist: FloatArray) -> IndexArray:
        """Rows whose distance to ``center`` may be below ``min_dist``."""
        c_sq = float(center @ center)
        approx = self.sq_norms + c_sq
        approx -= 2.0 * (self.X32 @ center.astype(np.float32)).astype(np.float64)
        slack = self.bound * (self.sq_norms + c_sq) + 1e-12
        with np.errstate(invalid="ignore"):
            current = min_dist * min_dist
        return np.flatnonzero(approx - slack < current)

    def update(self, min_dist: FloatArray, center: FloatArray) -> None:
        """``min_dist = minimum(min_dist, distance to center)``, exactly."""
        rows = self.candidates(center, min_dist)
        if rows.size:
            exact = _distances_to_point(self.points[rows], center)
            min_dist[rows] = np.minimum(min_dist[rows], exact)

    def nearest(self, centers: FloatArray) -> FloatArray:
        """Exact distance of every row to its nearest centre, in row blocks.

        A float32 product ``|c|^2 - 2 x.c`` names, per row, the centres within
        the error bound of its best one (almost always one); only those pairs
        get an exact float64 distance, and the row keeps their minimum.
        """
        n = self.points.shape[0]
        out = np.empty(n, dtype=np.float64)
        c_sq = np.einsum("ij,ij->i", centers, centers)
        C32 = np.ascontiguousarray(centers, dtype=np.float32)
        c_sq32 = c_sq.astype(np.float32)
        c_max = float(c_sq.max())
        step = max(1, (1 << 21) // max(1, centers.shape[0]))
        for start in range(0, n, step):
            stop = min(start + step, n)
            approx = self.X32[start:stop] @ C32.T
            approx *= -2.0
            approx += c_sq32
            best = approx.min(axis=1)
            slack = 2.0 * self.bound * (self.sq_norms[start:stop] + c_max) + 1e-12
            rows, cols = np.nonzero(approx <= (best + slack)[:, None])
            diff = self.points[start + rows] - centers[cols]
            exact = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            # Every row has at least its best centre; rows come out in order.
            firsts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
            out[start:stop] = np.minimum.reduceat(exact, firsts)
        return out


def _greedy(
    points: FloatArray,
    n_picks: int,
    centers: FloatArray | None,
    excluded: npt.NDArray[np.bool_],
) -> tuple[FloatArray, IndexArray]:
    """The greedy picks and the final nearest-centre distances (-inf: picked)."""
    n, d = points.shape
    screen = _Screen(points)
    min_dist = np.full(n, np.inf, dtype=np.float64)
    has_centers = centers is not None and np.size(centers) > 0 and n > 0
    if has_centers:
        anchor = _check_features(centers, name="centers", n_features=d)
        min_dist = screen.nearest(anchor)
    # Picked and excluded items are marked -inf: np.minimum keeps them there and
    # argmax never returns them while an open item remains.
    min_dist[excluded] = -np.inf

    picks = np.empty(n_picks, dtype=np.intp)
    for j in range(n_picks):
        if j == 0 and not has_centers:
            to_mean = _distances_to_point(points, points.mean(axis=0))
            to_mean[excluded] = np.inf
            pick = int(np.argmin(to_mean))
        else:
            pick = int(np.argmax(min_dist))
        picks[j] = pick
        screen.update(min_dist, points[pick])
        min_dist[pick] = -np.inf
    return min_dist, picks


def kcenter_greedy_scores(
    X: FloatArray,
    n_picks: int,
    *,
    centers: FloatArray | None = None,
    exclude: IndexArray | None = None,
) -> FloatArray:
    """Greedy k-center (core-set) picks, encoded as scores.

    Each pick is the item farthest from its nearest centre; it then becomes a
    centre. A running ``(n,)`` vector of nearest-centre distances is initialised
    from ``centers`` (one chunked BLAS product names each row's nearest centre,
    whose distance is then computed exactly) and updated after each pick: a
    float32 matrix-vector product with a proven error bound finds the rows the
    pick may bring closer, and only those get an exact float64 distance and
    ``np.minimum`` (the same numbers as updating every row). Without any
    centre the first pick is the item nearest the mean of ``X``, which is
    deterministic and, barring exact ties, does not depend on the order of the
    rows. Memory is ``O(n)`` beyond ``X`` (a float32 copy of it, and row blocks
    of at most 2^21 entries against the centres).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    n_picks : int
        Number of greedy picks; clipped to the number of items not excluded.
    centers : ndarray of shape (c, d), optional
        Already covered points (labeled items, items already in the batch).
    exclude : ndarray of shape (s,), int, optional
        Pool positions that must not be picked (already in the batch).

    Returns
    -------
    scores : ndarray of shape (n,)
        Let ``D`` be the largest final nearest-centre distance among the items
        that are neither picked nor excluded (0 if none) and ``offset = 1 + D``.
        The pick made in order ``j`` (0-based) scores ``offset + n_picks - j``,
        so the top ``n_picks`` scores are exactly the greedy picks in pick order.
        Every other item scores its final distance to the nearest centre (picks
        included), in ``[0, D]`` (0 for all when there is neither a centre nor
        a pick); excluded items score ``-1``, lowest of all.

    References
    ----------
    Sener and Savarese (2018), algorithm 1; Gonzalez (1985).
    """
    points = check_array_2d(X)
    n = points.shape[0]
    excluded = np.zeros(n, dtype=bool)
    if exclude is not None:
        excluded[_check_positions(exclude, n, name="exclude")] = True
    n_open = n - int(excluded.sum())
    n_picks = min(
        check_int(n_picks, param="n_picks", owner="kcenter_greedy_scores", low=0),
        n_open,
    )

    # The products are small (one row block or one vector at a time): waking
    # BLAS threads costs more than it saves, badly so on a loaded machine.
    with threadpool_limits(limits=1, user_api="blas"):
        min_dist, picks = _greedy(points, n_picks, centers, excluded)

    scores = np.where(np.isfinite(min_dist), min_dist, 0.0)
    rest = np.isfinite(min_dist)
    offset = 1.0 + (float(min_dist[rest].max()) if rest.any() else 0.0)
    scores[picks] = offset + (n_picks - np.arange(n_picks, dtype=np.float64))
    scores[excluded] = -1.0
    return np.asarray(scores, dtype=np.float64)


def _distinct_clusters(points: FloatArray, n_clusters: int) -> int:
    """``n_clusters`` reduced to the number of distinct rows of ``points``."""
    n_distinct = int(np.unique(points, axis=0).shape[0]) if len(points) else 0
    return min(n_clusters, n_distinct)


def _one_cluster(
    points: FloatArray, sample_weight: FloatArray | None = None
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    centroid = np.average(points, axis=0, weights=sample_weight)[np.newaxis, :]
    return centroid, np.zeros(len(points), dtype=np.intp)


def _fit_kmeans(
    points: FloatArray,
    n_clusters: int,
    *,
    seed: int,
    n_init: int,
    sample_weight: FloatArray | None = None,
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """K-means on ``points``: centroids ``(c, d)`` and labels ``(len(points),)``.

    ``n_clusters`` is reduced to the number of distinct rows, so k-means never
    warns about empty or duplicate clusters. ``sample_weight`` weighs the
    seeding and the means.
    """
    n_clusters = _distinct_clusters(points, n_clusters)
    if n_clusters <= 1:
        return _one_cluster(points, sample_weight)
    model = KMeans(
        n_clusters=n_clusters, init="k-means++", n_init=n_init, random_state=seed
    ).fit(points, sample_weight=sample_weight)
    centroids = np.asarray(model.cluster_centers_, dtype=np.float64)
    return centroids, np.asarray(model.labels_, dtype=np.intp)


def _fit_kmeans_fast(
    points: FloatArray,
    n_clusters: int,
    *,
    seed: int,
    sample_weight: FloatArray | None = None,
) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Cheaper k-means for many clusters: centroids and labels as :func:`_fit_kmeans`.

    One k-means++ seeding with a single candidate per step
    (:func:`sklearn.cluster.kmeans_plusplus` with ``n_local_trials=1``, the
    original D-squared sampling of Arthur and Vassilvitskii 2007) instead of
    ``n_init`` greedy seedings, then at most :data:`FAST_KMEANS_MAX_ITER` Lloyd
    iterations (:class:`sklearn.cluster.KMeans` from those seeds). Greedy
    seeding costs ``2 + log(k)`` distance rows per centre and dominated the
    fit at hundreds of clusters. Deterministic for a given ``seed``, on any
    number of cores. ``sample_weight`` weighs both the seeding and Lloyd's means.
    """
    n_clusters = _distinct_clusters(points, n_clusters)
    if n_clusters <= 1:
        return _one_cluster(points, sample_weight)
    # One thread, BLAS and OpenMP alike: the seeding makes one small distance
    # product per centre, where waking threads costs more than it saves (badly
    # so on a loaded machine), and Lloyd's sums then run in one fixed order, so
    # the labels do not depend on the number of cores.
    with threadpool_limits(limits=1):
        seeds, _ = kmeans_plusplus(
            points,
            n_clusters,
            sample_weight=sample_weight,
            random_state=seed,
            n_local_trials=1,
        )
        model = KMeans(
            n_clusters=n_clusters,
            init=seeds,
            n_init=1,
            max_iter=FAST_KMEANS_MAX_ITER,
            random_state=seed,
        ).fit(points, sample_weight=sample_weight)
    centroids = np.asarray(model.cluster_centers_, dtype=np.float64)
    return centroids, np.asarray(model.labels_, dtype=np.intp)


def cluster_quota_scores(
    X: FloatArray,
    n_clusters: int,
    *,
    rng: RandomState = None,
    max_fit_rows: int = 10_000,
    n_init: int = 3,
    exclude: IndexArray | None = None,
) -> FloatArray:
    """Cluster-proportional scores: the top ``b`` fill per-cluster quotas.

    K-means (``n_clusters``, seeded from ``rng``) is fitted on a random sample of
    at most ``max_fit_rows`` rows, taken in lexicographic row order so that the
    fit does not depend on the order of the pool (with ``n <= max_fit_rows`` it
    uses every row and is then permutation-equivariant). Every row is assigned
    to its nearest centroid in chunks. Inside each cluster items are ranked by
    distance to the centroid, closest first, and score
    ``-(rank + 0.5) / cluster_size``: the Sainte-Lague divisors, so the ``b``
    highest scores give each cluster a number of items proportional to its size.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    n_clusters : int
        Number of k-means clusters (usually the batch size); reduced to the
        number of distinct rows in the fitting sample.
    rng : numpy.random.Generator, int or None
        Draws the fitting sample and the k-means seed.
    max_fit_rows : int, default=10_000
        Largest number of rows k-means is fitted on.
    n_init : int, default=3
        Number of k-means restarts.
    exclude : ndarray of shape (s,), int, optional
        Pool positions already in the batch: they take the first ranks of their
        cluster (so they count against its quota) and score ``-1``, lowest.

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``(-1, 0)`` for open items; ``-1`` for excluded ones.

    References
    ----------
    Zhdanov, F. (2019). Diverse mini-batch active learning. arXiv:1901.05954.
    Sainte-Lague, A. (1910). La representation proportionnelle et la methode des
    moindres carres. Annales scientifiques de l'Ecole Normale Superieure 27.
    """
    points = check_array_2d(X)
    n = points.shape[0]
    owner = "cluster_quota_scores"
    n_clusters = check_int(n_clusters, param="n_clusters", owner=owner, low=1)
    max_fit_rows = check_int(max_fit_rows, param="max_fit_rows", owner=owner, low=2)
    n_init = check_int(n_init, param="n_init", owner=owner, low=1, high=100)
    generator = check_rng(rng)
    excluded = np.zeros(n, dtype=bool)
    if exclude is not None:
        excluded[_check_positions(exclude, n, name="exclude")] = True
    if n == 0:
        return np.empty(0, dtype=np.float64)

    if n > max_fit_rows:
        fit_rows = points[np.sort(generator.choice(n, max_fit_rows, replace=False))]
    else:
        fit_rows = points
    fit_rows = fit_rows[np.lexsort(fit_rows.T[::-1])]
    seed = int(generator.integers(np.iinfo(np.int32).max))
    centroids, _ = _fit_kmeans(fit_rows, n_clusters, seed=seed, n_init=n_init)

    labels, distances = pairwise_distances_argmin_min(
        points, centroids, metric="euclidean"
    )
    labels = np.asarray(labels, dtype=np.intp)
    sizes = np.bincount(labels, minlength=centroids.shape[0])
    # Group by cluster, excluded items first, then by distance to the centroid.
    order = np.lexsort((distances, ~excluded, labels))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.empty(n, dtype=np.float64)
    rank[order] = np.arange(n) - starts[labels[order]]
    scores = -(rank + 0.5) / sizes[labels]
    scores[excluded] = -1.0
    return np.asarray(scores, dtype=np.float64)


def _selected(context: ScoringContext) -> IndexArray | None:
    if not context.has("selected"):
        return None
    return _check_positions(context.selected, context.n_items, name="selected")


class KCenter(Strategy):
    """Greedy k-center / core-set coverage: :func:`kcenter_greedy_scores`.

    Labeled items (``X_labeled``) and items already in the batch
    (``X[selected]``) are the initial centres. The number of picks is the
    ``batch_size`` the policy passes, or :data:`DEFAULT_PICKS` (100) without one.
    """

    name = "kcenter"
    requires: ClassVar[tuple[str, ...]] = ("X",)

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.X is not None
        X = check_array_2d(context.X)
        selected = _selected(context)
        parts = []
        if context.has("X_labeled"):
            parts.append(
                _check_features(
                    context.X_labeled, name="X_labeled", n_features=X.shape[1]
                )
            )
        if selected is not None:
            parts.append(X[selected])
        centers = np.concatenate(parts) if parts else None
        n_picks = DEFAULT_PICKS if batch_size is None else batch_size
        return kcenter_greedy_scores(X, n_picks, centers=centers, exclude=selected)


class ClusterQuota(Strategy):
    """Proportional cluster quotas: :func:`cluster_quota_scores`.

    Parameters
    ----------
    n_clusters : int, optional
        Number of clusters; by default the ``batch_size`` the policy passes, or
        :data:`DEFAULT_CLUSTERS` (10) without one.
    max_fit_rows : int, default=10_000
        Largest sample k-means is fitted on.
    n_init : int, default=3
        Number of k-means restarts.
    """

    name = "cluster_quota"
    requires: ClassVar[tuple[str, ...]] = ("X",)
    uses_rng = True

    def __init__(
        self, n_clusters: int | None = None, max_fit_rows: int = 10_000, n_init: int = 3
    ) -> None:
        owner = "ClusterQuota"
        self.n_clusters = (
            None
            if n_clusters is None
            else check_int(n_clusters, param="n_clusters", owner=owner, low=1)
        )
        self.max_fit_rows = check_int(
            max_fit_rows, param="max_fit_rows", owner=owner, low=2
        )
        self.n_init = check_int(n_init, param="n_init", owner=owner, low=1, high=100)

    def params(self) -> dict[str, Any]:
        return {
            "n_clusters": self.n_clusters,
            "max_fit_rows": self.max_fit_rows,
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
        if self.n_clusters is not None:
            n_clusters = self.n_clusters
        elif batch_size is not None:
            n_clusters = max(1, batch_size)
        else:
            n_clusters = DEFAULT_CLUSTERS
        return cluster_quota_scores(
            context.X,
            n_clusters,
            rng=rng,
            max_fit_rows=self.max_fit_rows,
            n_init=self.n_init,
            exclude=_selected(context),
        )
