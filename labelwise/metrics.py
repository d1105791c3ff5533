"""Learning-curve metrics: model scores, AULC, labels-to-target, gain over random.

References
----------
Zhan, X., Liu, H., Li, Q., Chan, A. B. (2021). A Comparative Survey of Deep
Active Learning (AUBC). Lu, Chen, Lin (2023), re-benchmarking pool-based active
learning: the area under the budget curve is the mean of the curve's points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from labelwise._registry import Registry
from labelwise._typing import FloatArray
from labelwise.exceptions import InvalidInputError

__all__ = [
    "PairedGain",
    "aulc",
    "get_metric",
    "get_metric_names",
    "labels_to_target",
    "paired_gain",
    "score_predictions",
]

Metric = Callable[[npt.ArrayLike, npt.ArrayLike], float]


def _accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


def _macro_f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


_METRICS: Registry[Metric] = Registry("metric", "labelwise.metrics.get_metric_names")
_METRICS.register("accuracy", _accuracy)
_METRICS.register("macro_f1", _macro_f1)


def get_metric(name: str) -> Metric:
    """The metric function registered as ``name`` (``accuracy``, ``macro_f1``)."""
    return _METRICS.get(name)


def get_metric_names() -> list[str]:
    """Names of every registered metric, sorted."""
    return _METRICS.names()


def score_predictions(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, *, metric: str = "accuracy"
) -> float:
    """Score predictions with the metric registered as ``metric``."""
    return get_metric(metric)(y_true, y_pred)


def _curve(values: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InvalidInputError(
            f"{name} must be a non-empty 1-D array of finite numbers. "
            f"Got shape {arr.shape} instead.",
            hint="Pass one score per point of the learning curve.",
        )
    return arr


def aulc(scores: npt.ArrayLike) -> float:
    """Area under the learning curve: the mean of the curve's points.

    Parameters
    ----------
    scores : array-like of shape (n_points,)
        The metric after each round, at evenly spaced label counts.
    """
    return float(_curve(scores, "scores").mean())


def labels_to_target(
    labels: npt.ArrayLike, scores: npt.ArrayLike, target: float
) -> int | None:
    """The first label count whose score reaches ``target``; None if never.

    Parameters
    ----------
    labels : array-like of shape (n_points,)
        Label counts, increasing.
    scores : array-like of shape (n_points,)
        The metric at each label count.
    target : float
        The score to reach (e.g. 95 % of the full-data score).
    """
    x = _curve(labels, "labels")
    y = _curve(scores, "scores")
    if x.shape != y.shape:
        raise InvalidInputError(
            f"labels and scores must have the same length. Got {x.size} and {y.size}.",
            hint="Pass one label count per score.",
        )
    reached = np.flatnonzero(y >= target)
    return int(x[reached[0]]) if reached.size else None


@dataclass(frozen=True)
class PairedGain:
    """Mean difference between paired samples and its two-sided p-value."""

    delta: float
    p_value: float | None
    n_pairs: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ``{"aulc_delta", "p_value", "n_pairs"}``."""
        return {
            "aulc_delta": self.delta,
            "p_value": self.p_value,
            "n_pairs": self.n_pairs,
        }


def paired_gain(treatment: npt.ArrayLike, control: npt.ArrayLike) -> PairedGain:
    """Paired t-test of ``treatment - control`` across seeds.

    Both sequences are indexed by seed (same seeds, same splits). The p-value is
    None with fewer than 2 pairs; 1.0 when every difference is zero.
    """
    a = _curve(treatment, "treatment")
    b = _curve(control, "control")
    if a.shape != b.shape:
        raise InvalidInputError(
            f"treatment and control must be paired by seed. Got {a.size} and "
            f"{b.size} values.",
            hint="Run every policy on the same seeds.",
        )
    diff = a - b
    delta = float(diff.mean())
    if diff.size < 2:
        return PairedGain(delta, None, int(diff.size))
    if np.allclose(diff, diff[0]):
        # No spread: the t statistic is undefined (0/0) or infinite.
        return PairedGain(delta, 1.0 if diff[0] == 0 else 0.0, int(diff.size))
    from scipy.stats import ttest_rel

    result = ttest_rel(a, b)
    return PairedGain(delta, float(result.pvalue), int(diff.size))
