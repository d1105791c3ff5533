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
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from labelwise._registry import Registry
from labelwise._typing import FloatArray
from labelwise._validation import check_in_options
from labelwise.exceptions import InvalidInputError

__all__ = [
    "PairedGain",
    "PairedTest",
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


PairedTest = Literal["t", "wilcoxon"]


def paired_gain(
    treatment: npt.ArrayLike,
    control: npt.ArrayLike,
    *,
    method: PairedTest = "t",
) -> PairedGain:
    """Mean of ``treatment - control`` across seeds and its two-sided p-value.

    Parameters
    ----------
    treatment : array-like of shape (n_seeds,)
        One value per seed (e.g. a policy's AULC), in seed order.
    control : array-like of shape (n_seeds,)
        The baseline's values on the same seeds, splits and initial sets.
    method : {"t", "wilcoxon"}, default="t"
        ``"t"``: paired t-test (:func:`scipy.stats.ttest_rel`). ``"wilcoxon"``:
        Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`), which does not
        assume normal differences; zero differences are split between the
        positive and negative ranks (``zero_method="zsplit"``, as
        ``bench/report10.py`` does).

    Returns
    -------
    PairedGain
        ``delta`` (mean difference), ``p_value`` and ``n_pairs``. The p-value is
        None with fewer than 2 pairs and 1.0 when every difference is zero
        (within 1e-8 for the Wilcoxon test); for the t-test, equal non-zero
        differences give 0.0 (no spread).

    References
    ----------
    Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics
    Bulletin 1(6). Demšar, J. (2006). Statistical comparisons of classifiers over
    multiple data sets. JMLR 7, which recommends the signed-rank test over the
    t-test for such comparisons.
    """
    check_in_options(
        method, param="method", owner="paired_gain", options=("t", "wilcoxon")
    )
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
    n = int(diff.size)
    if n < 2:
        return PairedGain(delta, None, n)
    if method == "wilcoxon":
        return PairedGain(delta, _wilcoxon_p(a, b), n)
    if np.allclose(diff, diff[0]):
        # No spread: the t statistic is undefined (0/0) or infinite.
        return PairedGain(delta, 1.0 if diff[0] == 0 else 0.0, n)
    from scipy.stats import ttest_rel

    result = ttest_rel(a, b)
    return PairedGain(delta, float(result.pvalue), n)


def _wilcoxon_p(a: FloatArray, b: FloatArray) -> float:
    if np.allclose(a - b, 0.0):
        # Every rank is a zero: scipy's statistic is undefined, nothing differs.
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)
