"""The control-slice comparison: is the loop beating random labelling so far?

The random control slice of every round is a uniform sample of the pool, so a
model trained on control labels alone is what random labelling would have
bought. :func:`learning_curves` trains the project's default model on ``k``
control labels and on ``k`` labels drawn from all the labels (same ``k``,
several ``k``, repeated draws) and records what each model predicts.
:func:`paired_bootstrap` turns those paired results into the mean macro-F1
(or accuracy) difference with a 90 % interval, resampling both the repeated
draws and the validation items; :func:`verdict` says it in words.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelwise._typing import FloatArray
from labelwise.service.loop.training import Features, LabeledSet, take

__all__ = [
    "BEATING",
    "CONFIDENCE",
    "INCONCLUSIVE",
    "METRICS",
    "MIN_CONTROL_LABELS",
    "MIN_VALIDATION",
    "NOT_BEATING",
    "VERDICTS",
    "CurveResult",
    "curve_sizes",
    "learning_curves",
    "paired_bootstrap",
    "verdict",
    "weighted_scores",
]

#: The loop's labels train a better model than as many random ones (interval > 0).
BEATING = "beating"
#: The interval reaches zero or below: no evidence the loop beats random.
NOT_BEATING = "not_beating"
#: Too few control or validation labels to compare at all.
INCONCLUSIVE = "inconclusive"
VERDICTS = (BEATING, NOT_BEATING, INCONCLUSIVE)

#: Labeled control items needed before the curves are compared.
MIN_CONTROL_LABELS = 20
#: Labeled validation items needed to score the curve models.
MIN_VALIDATION = 20
#: Coverage of the reported interval.
CONFIDENCE = 0.90
#: Bootstrap resamples of the paired differences.
N_BOOTSTRAP = 2000
#: Smallest training set on the curves.
MIN_K = 10


def curve_sizes(n_control: int, *, n_points: int = 5, min_k: int = MIN_K) -> list[int]:
    """Label counts of the curves: up to ``n_points`` from ``min_k`` to ``n_control``.

    Geometrically spaced, so the small counts where selection matters most
    get points too; empty when there are fewer than ``min_k`` control labels.
    """
    if n_control < min_k:
        return []
    if n_control == min_k or n_points <= 1:
        return [n_control]
    grid = np.geomspace(min_k, n_control, num=n_points)
    return sorted({round(float(k)) for k in grid})


#: Metrics the verdict can compare, each with its weighted form.
METRICS = ("macro_f1", "accuracy")


def weighted_scores(
    predicted: np.ndarray[Any, Any],
    y_true: np.ndarray[Any, Any],
    weights: FloatArray,
    *,
    n_classes: int,
    metric: str,
) -> FloatArray:
    """The metric of every prediction row under every weighting of the items.

    Parameters
    ----------
    predicted : int array of shape (n_rows, n_items)
        Class codes predicted by each model.
    y_true : int array of shape (n_items,)
        True class codes.
    weights : array of shape (n_weightings, n_items)
        Item weights: all ones for the plain score, multinomial counts for a
        bootstrap resample.
    n_classes : int
        Number of class codes.
    metric : {"macro_f1", "accuracy"}
        Macro-F1 averages the F1 of the classes present in the truth or the
        predictions (sklearn's rule, zero division as 0).

    Returns
    -------
    array of shape (n_rows, n_weightings)
    """
    if metric == "accuracy":
        correct = (predicted == y_true[None, :]).astype(np.float64)
        return np.asarray(correct @ weights.T / weights.sum(axis=1)[None, :])
    total = np.zeros((predicted.shape[0], weights.shape[0]))
    present = np.zeros_like(total)
    for code in range(n_classes):
        truth = (y_true == code).astype(np.float64)
        guess = (predicted == code).astype(np.float64)
        tp = (guess * truth[None, :]) @ weights.T
        denominator = guess @ weights.T + (weights @ truth)[None, :]
        seen = denominator > 0
        total += np.where(seen, 2.0 * tp / np.where(seen, denominator, 1.0), 0.0)
        present += seen
    return np.asarray(total / np.maximum(present, 1.0))


@dataclass(frozen=True, eq=False)
class CurveResult:
    """What each curve model predicted on the validation items, arm by arm.

    ``predicted_control`` and ``predicted_all`` hold class codes of shape
    (n_k, n_repeats, n_validation); repeat ``r`` at size ``k`` is one pair of
    draws. ``y_true`` holds the validation items' codes.
    """

    sizes: list[int]
    predicted_control: np.ndarray[Any, Any]
    predicted_all: np.ndarray[Any, Any]
    y_true: np.ndarray[Any, Any]
    n_classes: int

    def scores(self, metric: str) -> tuple[FloatArray, FloatArray]:
        """(control, all) scores of shape (n_k, n_repeats) under ``metric``."""
        n_k, n_rep, n_val = self.predicted_control.shape
        ones = np.ones((1, n_val))
        out = []
        for predicted in (self.predicted_control, self.predicted_all):
            flat = weighted_scores(
                predicted.reshape(n_k * n_rep, n_val),
                self.y_true,
                ones,
                n_classes=self.n_classes,
                metric=metric,
            )
            out.append(flat.reshape(n_k, n_rep))
        return out[0], out[1]

    def points(self) -> list[dict[str, Any]]:
        """Per size: each arm's mean (and std over the draws) of both metrics."""
        acc_control, acc_all = self.scores("accuracy")
        f1_control, f1_all = self.scores("macro_f1")
        return [
            {
                "k": k,
                "control_macro_f1": round(float(f1_control[i].mean()), 4),
                "all_macro_f1": round(float(f1_all[i].mean()), 4),
                "control_macro_f1_std": round(float(f1_control[i].std()), 4),
                "all_macro_f1_std": round(float(f1_all[i].std()), 4),
                "control_accuracy": round(float(acc_control[i].mean()), 4),
                "all_accuracy": round(float(acc_all[i].mean()), 4),
            }
            for i, k in enumerate(self.sizes)
        ]


def _subset(labeled: LabeledSet, rows: np.ndarray[Any, Any]) -> LabeledSet:
    features: Features
    if isinstance(labeled.features, list):
        features = [labeled.features[i] for i in rows]
    else:
        features = labeled.features.iloc[rows].reset_index(drop=True)
    return LabeledSet(
        [labeled.item_ids[i] for i in rows],
        features,
        [labeled.labels[i] for i in rows],
    )


def _predict(
    fit: Callable[[LabeledSet, int], Any],
    training: LabeledSet,
    validation: LabeledSet,
    seed: int,
) -> np.ndarray[Any, Any]:
    """Validation predictions of a model fitted on ``training``.

    A training set of one class cannot fit a classifier: it predicts that
    class everywhere, which is exactly what it knows.
    """
    classes = sorted(set(training.labels))
    if len(classes) < 2:
        return np.full(len(validation), classes[0], dtype=object)
    model = fit(training, seed)
    parts = [
        np.asarray(model.predict(take(validation.features, start, start + 10_000)))
        for start in range(0, len(validation), 10_000)
    ]
    return np.concatenate(parts).astype(object)


def learning_curves(
    *,
    fit: Callable[[LabeledSet, int], Any],
    classes: list[str],
    control: LabeledSet,
    everything: LabeledSet,
    validation: LabeledSet,
    sizes: list[int],
    repeats: int,
    rng: np.random.Generator,
    tick: Callable[[], None] = lambda: None,
) -> CurveResult:
    """Train on ``k`` control labels vs ``k`` of all labels, ``repeats`` draws each.

    ``fit(training, seed)`` returns a fitted model; both arms of a pair use
    the same seed. ``tick`` is called after every fitted pair.
    """
    code = {name: i for i, name in enumerate(classes)}

    def encode(values: Any) -> np.ndarray[Any, Any]:
        return np.asarray([code.get(str(v), -1) for v in values], dtype=np.int64)

    y_true = encode(validation.labels)
    shape = (len(sizes), repeats, len(validation))
    predicted_control = np.zeros(shape, dtype=np.int64)
    predicted_all = np.zeros(shape, dtype=np.int64)
    for i, k in enumerate(sizes):
        for r in range(repeats):
            seed = int(rng.integers(0, 2**31 - 1))
            rows_control = rng.choice(len(control), size=k, replace=False)
            rows_all = rng.choice(len(everything), size=k, replace=False)
            predicted_control[i, r] = encode(
                _predict(fit, _subset(control, rows_control), validation, seed)
            )
            predicted_all[i, r] = encode(
                _predict(fit, _subset(everything, rows_all), validation, seed)
            )
            tick()
    return CurveResult(sizes, predicted_control, predicted_all, y_true, len(classes))


def paired_bootstrap(
    result: CurveResult,
    *,
    metric: str,
    rng: np.random.Generator,
    n_boot: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """Mean gain of all labels over control labels under ``metric``, with its interval.

    The gain is the score difference of each pair of draws, averaged over the
    sizes and the repeats. The bootstrap resamples the repeated draws and the
    validation items together (one resample for both arms, so pairs stay
    paired); every resample is a weighting (multinomial counts), so no
    resampled copy of the data is built.

    Returns
    -------
    (mean, low, high) in points (metric x 100).
    """
    n_k, n_rep, n_val = result.predicted_control.shape
    control, everything = result.scores(metric)
    mean = float((everything - control).mean())
    weights_val = rng.multinomial(n_val, np.full(n_val, 1.0 / n_val), size=n_boot)
    weights_rep = rng.multinomial(n_rep, np.full(n_rep, 1.0 / n_rep), size=n_boot)
    arms = []
    for predicted in (result.predicted_control, result.predicted_all):
        scores = weighted_scores(
            predicted.reshape(n_k * n_rep, n_val),
            result.y_true,
            weights_val.astype(np.float64),
            n_classes=result.n_classes,
            metric=metric,
        )
        arms.append(scores.reshape(n_k, n_rep, n_boot))
    gain = (arms[1] - arms[0]).mean(axis=0)  # (R, B): averaged over the sizes
    stats = np.einsum("br,rb->b", weights_rep, gain) / n_rep
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return 100.0 * mean, 100.0 * float(low), 100.0 * float(high)


_METRIC_WORDS = {"macro_f1": "macro-F1", "accuracy": "accuracy"}


def _points(value: float) -> str:
    return f"{value:+.1f}"


def verdict(
    *,
    n_control: int,
    n_validation: int,
    gain: tuple[float, float, float] | None,
    metric: str = "macro_f1",
    min_control: int = MIN_CONTROL_LABELS,
    min_validation: int = MIN_VALIDATION,
) -> tuple[str, str]:
    """The verdict code and its plain-language sentence.

    ``gain`` is ``(mean, low, high)`` of :func:`paired_bootstrap`, in accuracy
    points of ``metric``; None when the curves could not be compared.
    """
    if n_validation < min_validation:
        need = min_validation - n_validation
        return INCONCLUSIVE, (
            f"Too few labeled validation items to tell yet: {n_validation} of the "
            f"{min_validation} needed (need about {need} more; import them with "
            "--role validation)."
        )
    if n_control < min_control or gain is None:
        need = max(min_control - n_control, 1)
        return INCONCLUSIVE, (
            f"Too few control labels to tell yet: {n_control} labeled random-slice "
            f"items of the {min_control} needed (need about {need} more)."
        )
    mean, low, high = gain
    figures = (
        f"{_points(mean)} {_METRIC_WORDS.get(metric, metric)} points, "
        f"{CONFIDENCE:.0%} interval "
        f"{_points(low)} to {_points(high)}"
    )
    if low > 0:
        return BEATING, f"The loop is beating random so far ({figures})."
    if high < 0:
        return NOT_BEATING, (
            f"The loop is not beating random so far: the same number of random "
            f"labels trains a better model ({figures})."
        )
    return NOT_BEATING, (
        "The loop is not beating random so far: the difference could be zero "
        f"({figures}). More control labels narrow the interval."
    )


def finite_or_none(value: float | None) -> float | None:
    """``value`` rounded to 4 places, or None when missing or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 4)
