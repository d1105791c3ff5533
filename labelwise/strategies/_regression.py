"""Regression: disagreement of an ensemble of regressors.

References
----------
Burbidge, R., Rowland, J. J. and King, R. D. (2007). Active learning for
regression based on query by committee. IDEAL, LNCS 4881, 209-218.

RayChaudhuri, T. and Hamey, L. G. C. (1995). Minimisation of data collection by
active learning. IEEE ICNN, 1338-1341.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from labelwise._typing import FloatArray, RandomState
from labelwise.exceptions import InvalidInputError
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = ["RegressionVariance", "check_committee_predictions", "prediction_variance"]


def check_committee_predictions(committee_predictions: Any) -> FloatArray:
    """Validate regression predictions of a committee: finite, shape ``(m, n)``, m >= 2.

    Returns
    -------
    predictions : ndarray of shape (m, n)
        As float64; a copy only when the dtype had to change.
    """
    try:
        arr = np.asarray(committee_predictions, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"committee_predictions must be numeric. Got {type(err).__name__}: {err}.",
            hint="Pass np.stack([model.predict(X) for model in committee]).",
        ) from None
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise InvalidInputError(
            "committee_predictions must be a 2-D array of shape (n_members, "
            f"n_items) with at least 2 members. Got shape {arr.shape} instead.",
            hint="Pass np.stack([model.predict(X) for model in committee]) with "
            "two or more models (bootstrap replicas or different seeds).",
        )
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.count_nonzero(~finite.all(axis=0)))
        raise InvalidInputError(
            "committee_predictions must be finite. Got NaN or infinity for "
            f"{bad} of {arr.shape[1]} items.",
            hint="Check the committee's models; drop or impute the items whose "
            "features produce non-finite predictions.",
        )
    return arr


def prediction_variance(committee_predictions: FloatArray) -> FloatArray:
    """Variance of the members' predictions for each item (``ddof=0``).

    Parameters
    ----------
    committee_predictions : ndarray of shape (m, n)
        Predictions of ``m >= 2`` regressors for ``n`` items.

    Returns
    -------
    scores : ndarray of shape (n,)
        Non-negative, in squared target units; 0 when all members agree.

    References
    ----------
    Burbidge, Rowland and King (2007), section 2.
    """
    predictions = check_committee_predictions(committee_predictions)
    return np.asarray(np.var(predictions, axis=0), dtype=np.float64)


class RegressionVariance(Strategy):
    """Query-by-committee for regression: :func:`prediction_variance`."""

    name = "regression_variance"
    pointwise = True
    requires: ClassVar[tuple[str, ...]] = ("committee_predictions",)

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.committee_predictions is not None
        return prediction_variance(context.committee_predictions)
