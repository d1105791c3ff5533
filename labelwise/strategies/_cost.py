"""Cost-sensitive selection: information per unit of labeling cost.

Items differ in what a label costs (a long document, a specialist's time). The
base strategy's scores are turned into ranks, so their scale does not matter,
and divided by each item's cost.

References
----------
Settles, B., Craven, M. and Friedland, L. (2008). Active learning with real
annotation costs. NIPS Workshop on Cost-Sensitive Learning, 1-10.

Haertel, R. A., Seppi, K. D., Ringger, E. K. and Carroll, J. L. (2008). Return
on investment for active learning. NIPS Workshop on Cost-Sensitive Learning.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.stats import rankdata

from labelwise._typing import FloatArray, RandomState
from labelwise._validation import check_in_options
from labelwise.exceptions import ConfigError, InvalidInputError
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = ["CostWeighted", "check_costs", "per_unit_cost"]


def check_costs(costs: Any, n_items: int) -> FloatArray:
    """Validate label costs: shape ``(n_items,)``, finite and strictly positive."""
    arr = np.asarray(costs, dtype=np.float64)
    if arr.shape != (n_items,):
        raise InvalidInputError(
            f"costs must be a 1-D array with one entry per pool item ({n_items}). "
            f"Got shape {arr.shape} instead.",
            hint="Pass one cost per item, in pool order (e.g. expected seconds).",
        )
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"costs must be finite and > 0. Got {int(bad.sum())} bad entries "
            f"(item {first} costs {arr[first]!r}).",
            hint="Replace missing or zero costs with a small positive default, "
            "such as the median cost.",
        )
    return arr


def per_unit_cost(scores: FloatArray, costs: FloatArray) -> FloatArray:
    """Rank-normalised score divided by cost.

    Scores are replaced by their rank divided by ``n`` (ties share their average
    rank, :func:`scipy.stats.rankdata`), which lies in ``(0, 1]`` whatever the
    base strategy's scale, then divided by the cost.

    Parameters
    ----------
    scores : ndarray of shape (n,)
        Finite base scores, higher = label first.
    costs : ndarray of shape (n,)
        Finite, strictly positive label cost per item.

    Returns
    -------
    scores : ndarray of shape (n,)
        ``rank(scores) / n / costs``: at equal base score the cheaper item wins.

    References
    ----------
    Settles, Craven and Friedland (2008); Haertel et al. (2008), return on
    investment ``benefit / cost``.
    """
    base = np.asarray(scores, dtype=np.float64)
    if base.ndim != 1 or not np.all(np.isfinite(base)):
        raise InvalidInputError(
            f"scores must be a finite 1-D array. Got shape {base.shape}"
            f"{'' if np.all(np.isfinite(base)) else ' with NaN or infinity'}.",
            hint="Pass the output of a strategy's score().",
        )
    n = base.shape[0]
    cost = check_costs(costs, n)
    if n == 0:
        return np.empty(0, dtype=np.float64)
    ranks = rankdata(base, method="average") / n
    return np.asarray(ranks / cost, dtype=np.float64)


class CostWeighted(Strategy):
    """A base strategy's scores per unit of cost: :func:`per_unit_cost`.

    Parameters
    ----------
    base : str, default="margin"
        Name of the registered strategy whose scores are weighted.
    base_params : dict, optional
        Parameters of the base strategy.

    ``requires`` is the base's plus ``"costs"``; ``uses_rng`` and
    ``reads_probas`` are the base's. The class attributes describe the default
    base, ``margin``.
    """

    name = "cost_weighted"
    requires: ClassVar[tuple[str, ...]] = ("probas", "costs")
    reads_probas: ClassVar[bool] = True

    def __init__(self, base: str = "margin", base_params: dict[str, Any] | None = None):
        # Imported here: labelwise.strategies imports this module.
        from labelwise.strategies import get_strategy, get_strategy_names

        options = [name for name in get_strategy_names() if name != self.name]
        self.base = check_in_options(
            base, param="base", owner="CostWeighted", options=options
        )
        if base_params is not None and not isinstance(base_params, dict):
            raise ConfigError(
                "The 'base_params' parameter of CostWeighted must be a dict or "
                f"None. Got {base_params!r} instead."
            )
        self.base_params = None if base_params is None else dict(base_params)
        self._base = get_strategy(self.base, **(self.base_params or {}))
        # Per instance: the requirements follow the base strategy.
        self.requires = (*self._base.requires, "costs")  # type: ignore[misc]
        self.uses_rng = self._base.uses_rng  # type: ignore[misc]
        self.reads_probas = self._base.reads_probas  # type: ignore[misc]

    def params(self) -> dict[str, Any]:
        return {"base": self.base, "base_params": self.base_params}

    def available(self, context: ScoringContext) -> bool:
        return context.has("costs") and self._base.available(context)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._base))

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        base_scores = self._base.score(context, batch_size=batch_size, rng=rng)
        if context.costs is None:
            raise InvalidInputError(
                "cost_weighted needs context.costs, one positive cost per pool "
                "item. Got none.",
                hint="Pass costs in the ScoringContext, or use the base strategy "
                f"{self.base!r} directly.",
            )
        return per_unit_cost(base_scores, context.costs)
