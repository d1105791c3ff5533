"""Error-driven sampling: label the pool items that look like known mistakes.

The reference set is every known error: production failures (``X_failures``)
and labeled items the current model gets wrong (``X_labeled[~labeled_correct]``).
Pool items close to one of them are likely to be mistakes of the same kind.

References
----------
Attenberg, J. and Provost, F. (2010). Why label when you can search?
Alternatives to active learning for applying human resources to build
classification models under extreme class imbalance. KDD, 423-432.

Lakkaraju, H., Kamar, E., Caruana, R. and Horvitz, E. (2017). Identifying
unknown unknowns in the open world: representations and policies for guided
exploration. AAAI, 2124-2132.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from labelwise._typing import FloatArray, IndexArray, RandomState
from labelwise._validation import check_array_2d
from labelwise.exceptions import InvalidInputError
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = [
    "ErrorDriven",
    "error_proximity_scores",
    "error_reference_set",
    "nearest_distances",
]

#: Pool rows per distance block (8,192 x 1,000 references is a 64 MB block).
_CHUNK_ROWS = 8_192


def _features(array: Any, *, name: str, n_features: int) -> FloatArray:
    arr = check_array_2d(array, name=name)
    if arr.shape[1] != n_features:
        raise InvalidInputError(
            f"{name} must have {n_features} features, like X. Got shape {arr.shape}.",
            hint="Compute every geometry array with the same embedder or feature "
            "pipeline.",
        )
    return arr


def error_reference_set(
    n_features: int,
    *,
    X_failures: Any = None,
    X_labeled: Any = None,
    labeled_correct: Any = None,
) -> FloatArray:
    """Stack the known errors: failures, then misclassified labeled items.

    Parameters
    ----------
    n_features : int
        Number of geometry features ``d`` of the pool.
    X_failures : ndarray of shape (f, d), optional
        Geometry features of known production failures.
    X_labeled : ndarray of shape (l, d), optional
        Geometry features of the labeled items.
    labeled_correct : ndarray of shape (l,), bool, optional
        Whether the model predicts each labeled item correctly; labeled items
        count only when this is given.

    Returns
    -------
    reference : ndarray of shape (r, d)
        ``X_failures`` followed by ``X_labeled[~labeled_correct]``; ``r`` may be 0.
    """
    parts = [np.empty((0, n_features), dtype=np.float64)]
    if X_failures is not None and np.size(X_failures) > 0:
        parts.append(_features(X_failures, name="X_failures", n_features=n_features))
    if X_labeled is not None and np.size(X_labeled) > 0 and labeled_correct is not None:
        labeled = _features(X_labeled, name="X_labeled", n_features=n_features)
        correct = np.asarray(labeled_correct)
        if correct.shape != (labeled.shape[0],) or correct.dtype.kind not in "bui":
            raise InvalidInputError(
                "labeled_correct must be a 1-D boolean array with one entry per row "
                f"of X_labeled ({labeled.shape[0]}). Got dtype {correct.dtype} and "
                f"shape {correct.shape}.",
                hint="Pass model.predict(X_labeled) == y_labeled.",
            )
        parts.append(labeled[~correct.astype(bool)])
    return np.concatenate(parts)


def nearest_distances(X: Any, reference: FloatArray) -> FloatArray:
    """Euclidean distance of each row of ``X`` to its nearest ``reference`` row.

    Uses ``|x|^2 - 2 x.r + |r|^2`` with one matrix product per block of
    :data:`_CHUNK_ROWS` rows (converted to float64 block by block, so a
    float32 pool is never copied whole): O(n * r * d) work, O(block * r)
    memory, no N x N matrix. Row ``i``'s distance depends on row ``i`` only, so
    a chunk's distances equal the whole pool's.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    n = int(np.shape(X)[0])
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK_ROWS):
        block = np.asarray(X[start : start + _CHUNK_ROWS], dtype=np.float64)
        sq = block @ ref.T
        sq *= -2.0
        sq += ref_sq
        sq += np.einsum("ij,ij->i", block, block)[:, np.newaxis]
        np.sqrt(
            np.maximum(sq.min(axis=1), 0.0), out=out[start : start + block.shape[0]]
        )
    return out


def error_proximity_scores(X: FloatArray, reference: FloatArray) -> FloatArray:
    """Closeness to the nearest known error: ``1 / (1 + d / scale)``.

    ``d`` is each item's Euclidean distance to its nearest reference item
    (:func:`nearest_distances`, the pool in row blocks) and ``scale`` the
    median of ``d`` over the pool (1 if that is 0), so the scores do not
    depend on the units of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Geometry features of the pool.
    reference : ndarray of shape (r, d), r >= 1
        Known errors, from :func:`error_reference_set`.

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``(0, 1]``; 1 for an item on top of a known error, 0.5 at the median
        distance.

    Raises
    ------
    InvalidInputError
        If ``reference`` is empty.
    """
    points = check_array_2d(X)
    n, d = points.shape
    ref = _features(reference, name="reference", n_features=d)
    if ref.shape[0] == 0:
        raise InvalidInputError(
            "error_driven needs at least one known error (X_failures, or labeled "
            "items with labeled_correct=False). Got none.",
            hint="Import production failures, or leave error_driven out of the "
            "policy until the model makes a mistake on a labeled item; the policy "
            "skips it while Strategy.available() is False.",
        )
    dist = nearest_distances(points, ref)
    scale = float(np.median(dist)) if n else 1.0
    if scale <= 0.0:
        scale = 1.0
    return np.asarray(1.0 / (1.0 + dist / scale), dtype=np.float64)


class ErrorDriven(Strategy):
    """Items near known errors first: :func:`error_proximity_scores`.

    Available only when the context holds ``X`` and at least one known error:
    a row of ``X_failures`` or a labeled item with ``labeled_correct`` False.
    """

    name = "error_driven"
    requires: ClassVar[tuple[str, ...]] = ("X",)

    def available(self, context: ScoringContext) -> bool:
        if not context.has("X"):
            return False
        if context.has("X_failures"):
            return True
        if context.has("X_labeled") and context.has("labeled_correct"):
            return bool(np.any(~np.asarray(context.labeled_correct, dtype=bool)))
        return False

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        if context.X is None:
            raise InvalidInputError(
                "error_driven needs the pool's geometry features X. Got none.",
                hint="Pass X (features or embeddings) in the ScoringContext.",
            )
        points = check_array_2d(context.X)
        reference = error_reference_set(
            points.shape[1],
            X_failures=context.X_failures,
            X_labeled=context.X_labeled,
            labeled_correct=context.labeled_correct,
        )
        return error_proximity_scores(points, reference)

    def preselect(
        self, context: ScoringContext, *, n_keep: int, index: IndexArray
    ) -> IndexArray | None:
        """The ``n_keep`` rows nearest a known error (the scores fall with distance).

        The scores' scale is the pool median, which a chunk cannot know, but
        they decrease with the distance, so the nearest rows are the best.
        """
        from labelwise._rowkeys import top_rows

        assert context.X is not None and context.row_keys is not None
        d = int(np.shape(context.X)[1])
        reference = error_reference_set(
            d,
            X_failures=context.X_failures,
            X_labeled=context.X_labeled,
            labeled_correct=context.labeled_correct,
        )
        dist = nearest_distances(context.X, reference)
        return top_rows(-dist, context.row_keys, index, n_keep)
