"""The strategy contract: a scoring context in, one float score per pool item out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from labelwise._typing import FloatArray, IndexArray, RandomState

__all__ = ["ScoringContext", "Strategy"]


@dataclass(frozen=True, eq=False)
class ScoringContext:
    """Everything a strategy may read about an unlabeled pool of ``n`` items.

    Every per-item array is indexed by pool position ``0..n-1``; the policy maps
    positions back to item ids. Strategies only read the fields they declare in
    ``Strategy.requires`` and never modify any array.

    Attributes
    ----------
    probas : ndarray of shape (n, k), optional
        Calibrated class probabilities of the current model.
    X : ndarray of shape (n, d), optional
        Dense features or embeddings used for geometry (diversity, density).
    committee_probas : ndarray of shape (m, n, k), optional
        Class probabilities of each of ``m`` committee members.
    committee_predictions : ndarray of shape (m, n), optional
        Regression predictions of each of ``m`` committee members.
    X_labeled : ndarray of shape (l, d), optional
        Geometry features of the items already labeled.
    labeled_correct : ndarray of shape (l,), bool, optional
        Whether the current model predicts each labeled item's label correctly.
    X_failures : ndarray of shape (f, d), optional
        Geometry features of known production failures.
    costs : ndarray of shape (n,), optional
        Positive label cost per pool item (seconds, money): score per unit cost.
    selected : ndarray of shape (s,), int, optional
        Pool positions already chosen for the batch being built; geometric
        strategies treat them as covered.
    row_keys : ndarray of shape (n,), optional
        Uniform ``[0, 1)`` keys keyed by (seed, global row index)
        (:func:`labelwise._rowkeys.row_keys`): strategies that need per-item
        randomness read them, so a chunked pool gives the same choices.
    """

    probas: FloatArray | None = None
    X: FloatArray | None = None
    committee_probas: FloatArray | None = None
    committee_predictions: FloatArray | None = None
    X_labeled: FloatArray | None = None
    labeled_correct: npt.NDArray[np.bool_] | None = None
    X_failures: FloatArray | None = None
    costs: FloatArray | None = None
    selected: IndexArray | None = None
    row_keys: FloatArray | None = None

    @property
    def n_items(self) -> int:
        """Number of pool items, read from the first per-item array present."""
        if self.probas is not None:
            return int(np.shape(self.probas)[0])
        if self.X is not None:
            return int(np.shape(self.X)[0])
        if self.committee_probas is not None:
            return int(np.shape(self.committee_probas)[1])
        if self.committee_predictions is not None:
            return int(np.shape(self.committee_predictions)[1])
        if self.costs is not None:
            return int(np.shape(self.costs)[0])
        return 0

    def has(self, name: str) -> bool:
        """True when field ``name`` is set and not empty."""
        value = getattr(self, name)
        return value is not None and np.size(value) > 0

    def field_names(self) -> list[str]:
        """Names of all context fields."""
        return [f.name for f in fields(self)]


class Strategy(ABC):
    """A named, stateless scorer: ``score(context) -> (n,)``, higher = label first.

    Subclasses set ``name`` (the registry key), ``requires`` (context fields the
    strategy reads) and implement :meth:`score` by calling a pure function.
    Constructor arguments are the strategy's parameters; ``params`` returns them.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    #: True when the scores depend on the rng (the same seed gives the same scores).
    uses_rng: ClassVar[bool] = False
    #: Context fields read when present but not needed: without them the
    #: strategy still scores (weighted_clusters clusters unweighted without
    #: ``probas``).
    optional: ClassVar[tuple[str, ...]] = ()
    #: True when the scorer reads probabilities and rejects invalid ones.
    reads_probas: ClassVar[bool] = False
    #: True when each item's score depends on that item's row alone, so the
    #: best items of a pool are the best of its chunks' best (two-stage
    #: selection keeps each chunk's top rows).
    pointwise: ClassVar[bool] = False

    def available(self, context: ScoringContext) -> bool:
        """True when the context has everything this strategy needs.

        A strategy that is not available has nothing to offer (no failures yet,
        no model yet); the policy hands its share on.
        """
        return all(context.has(name) for name in self.requires)

    @abstractmethod
    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        """Return one finite score per pool item, shape ``(n,)``."""

    def preselect(
        self, context: ScoringContext, *, n_keep: int, index: IndexArray
    ) -> IndexArray | None:
        """Rows of a chunk that may be among this strategy's ``n_keep`` picks.

        Two-stage selection (docs/scale.md) keeps, per chunk, the rows this
        returns; they must include every row the strategy would pick with a
        batch of ``n_keep`` from the whole pool, whatever ``context.selected``
        holds. ``None`` means the strategy cannot tell from one chunk (a
        geometry strategy): it then runs on the merged shortlist only.
        Pointwise strategies keep their top ``n_keep`` by score (ties by
        ``context.row_keys``, then ``index``).

        Parameters
        ----------
        context : ScoringContext
            The chunk's rows (``row_keys`` set) plus the pool-wide fields.
        n_keep : int
            Rows to keep.
        index : ndarray of shape (n,), int
            Global row positions of the chunk's rows.
        """
        if not self.pointwise:
            return None
        from labelwise._rowkeys import top_rows

        assert context.row_keys is not None
        scores = np.asarray(self.score(context, batch_size=n_keep), dtype=np.float64)
        return top_rows(scores, context.row_keys, index, n_keep)

    def params(self) -> dict[str, Any]:
        """The strategy's parameters, as passed to its constructor."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Strategy) or type(self) is not type(other):
            return False
        return self.params() == other.params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params().items()))))
