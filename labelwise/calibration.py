"""Calibrated probabilities for active learning, and how to measure calibration.

Uncertainty strategies read probabilities, so labelwise calibrates them before
anything else reads them. :class:`CalibratedModel` wraps any classifier (a bare
estimator or a whole pipeline) in scikit-learn's
:class:`~sklearn.calibration.CalibratedClassifierCV`, picks a method that suits
the amount of data, and stays usable from the very first labelled batch:

- one class seen so far: the Laplace-smoothed class prior for every row;
- too few labels to cross-validate: the plain estimator, uncalibrated;
- classes of the project not seen yet: columns of their own, so
  ``predict_proba`` always has one column per project class.

:func:`expected_calibration_error` and :func:`reliability_bins` measure the
result (top-label ECE with equal-width bins, Guo et al. 2017).

References
----------
.. [1] J. Platt, "Probabilistic outputs for support vector machines and
   comparisons to regularized likelihood methods", Advances in Large Margin
   Classifiers, 1999.
.. [2] B. Zadrozny and C. Elkan, "Transforming classifier scores into accurate
   multiclass probability estimates", KDD 2002.
.. [3] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of
   modern neural networks", ICML 2017.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from labelwise._typing import FloatArray
from labelwise._validation import check_in_options, check_int, check_probas, check_rng
from labelwise.exceptions import ConfigError, InvalidInputError

__all__ = [
    "CALIBRATION_METHODS",
    "CalibratedModel",
    "ReliabilityBins",
    "expected_calibration_error",
    "reliability_bins",
]

CALIBRATION_METHODS = ("auto", "isotonic", "none", "sigmoid", "temperature")
"""Values accepted by ``CalibratedModel(method=...)``."""

_MIN_CALIBRATION_SAMPLES = 10
_MIN_ISOTONIC_SAMPLES = 1000
_SEED_BOUND = 2**31 - 1


def _num_samples(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(X)


class CalibratedModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A classifier whose ``predict_proba`` is calibrated and covers every class.

    Parameters
    ----------
    estimator : estimator object
        Any classifier with ``fit`` and ``predict_proba`` (or
        ``decision_function``): a bare estimator or a pipeline. It is cloned,
        never modified.
    method : {"auto", "sigmoid", "isotonic", "temperature", "none"}, default="auto"
        Calibration map. ``"auto"`` fits the plain estimator when the rarest
        class has fewer than 2 examples or there are fewer than 10; otherwise
        isotonic regression [2]_ from 1000 examples on, Platt scaling [1]_ for
        two classes and temperature scaling [3]_ for more. An explicit method
        also falls back to the plain estimator when the rarest class has fewer
        than 2 examples (cross-validation is impossible then).
    cv : int, default=3
        Number of stratified folds; lowered to the count of the rarest class.
    classes : array-like of shape (K,), optional
        The project's full label set, in the column order wanted for
        ``predict_proba``. Defaults to the sorted labels seen in ``y``.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the fold shuffling and, where the estimator has a
        ``random_state`` parameter left at None, the estimator.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
        Column labels of ``predict_proba``.
    method_ : str
        The method actually used: ``"sigmoid"``, ``"isotonic"``,
        ``"temperature"``, ``"none"`` (plain estimator) or ``"prior"``
        (a single class seen: the smoothed prior).
    estimator_ : estimator object or None
        The fitted calibrated (or plain) estimator; None for ``"prior"``.
    class_counts_ : ndarray of shape (K,)
        Number of training examples of each class of ``classes_``.
    seen_classes_ : ndarray of shape (K,), bool
        Whether each class of ``classes_`` occurred in the training labels.
    prior_ : ndarray of shape (K,)
        Laplace-smoothed class prior ``(count_c + 1) / (n + K)``.
    n_splits_ : int or None
        Number of cross-validation folds used for calibration.

    Notes
    -----
    A class of ``classes`` that the training labels lack gets the probability
    ``1 / (n + K)``, the smoothed prior of a class seen zero times; the seen
    columns share the rest in proportion to the estimator's output, so rows
    always sum to 1.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> model = CalibratedModel(LogisticRegression(), classes=["a", "b", "c"])
    >>> model.fit([[0.0], [1.0]], ["a", "a"]).predict_proba([[0.5]]).round(2)
    array([[0.6, 0.2, 0.2]])
    """

    def __init__(
        self,
        estimator: Any,
        *,
        method: str = "auto",
        cv: int = 3,
        classes: Any = None,
        random_state: Any = None,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.classes = classes
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> CalibratedModel:
        """Fit the estimator and its calibration map.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n, ...)
            Training items, in whatever form the estimator accepts (texts for
            a text pipeline).
        y : array-like of shape (n,)
            Labels, each one of ``classes`` when given.

        Returns
        -------
        self : CalibratedModel
        """
        owner = type(self).__name__
        method = check_in_options(
            self.method, param="method", owner=owner, options=CALIBRATION_METHODS
        )
        cv = check_int(self.cv, param="cv", owner=owner, low=2)
        if not hasattr(self.estimator, "fit"):
            raise ConfigError(
                f"The 'estimator' parameter of {owner} must be a classifier with "
                f"fit and predict_proba. Got {self.estimator!r} instead.",
                hint="Pass e.g. LogisticRegression() or labelwise.models.make_model.",
            )
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or y_arr.size == 0:
            raise InvalidInputError(
                f"y must be a non-empty 1-D array of labels. Got shape {y_arr.shape} "
                "instead.",
                hint="Pass one label per training item.",
            )
        n = y_arr.shape[0]
        if _num_samples(X) != n:
            raise InvalidInputError(
                f"X and y must have the same number of items. Got {_num_samples(X)} "
                f"items in X and {n} labels in y instead.",
                hint="Align the items with their labels.",
            )
        self.classes_ = _resolve_classes(self.classes, y_arr, owner=owner)
        n_classes = self.classes_.shape[0]
        positions = _positions(self.classes_, y_arr)
        counts = np.bincount(positions, minlength=n_classes)
        self.class_counts_ = counts
        self.seen_classes_ = counts > 0
        self.prior_ = (counts + 1.0) / (n + n_classes)
        self.n_splits_: int | None = None

        seed = int(check_rng(self.random_state).integers(_SEED_BOUND))
        n_seen = int(self.seen_classes_.sum())
        if n_seen < 2:
            self.method_ = "prior"
            self.estimator_: Any = None
            return self
        rarest = int(counts[self.seen_classes_].min())
        self.method_ = _choose_method(method, n=n, n_seen=n_seen, rarest=rarest)
        base = _seeded_clone(self.estimator, seed)
        if self.method_ == "none":
            self.estimator_ = base.fit(X, y_arr)
            return self
        self.n_splits_ = min(cv, rarest)
        folds = StratifiedKFold(
            n_splits=self.n_splits_, shuffle=True, random_state=seed
        )
        calibrated = CalibratedClassifierCV(base, method=self.method_, cv=folds)
        self.estimator_ = calibrated.fit(X, y_arr)
        return self

    def predict_proba(self, X: Any) -> FloatArray:
        """Calibrated class probabilities over every class of ``classes_``.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n, ...)
            Items, in the form used for ``fit``.

        Returns
        -------
        probas : ndarray of shape (n, K)
            Rows sum to 1; columns follow ``classes_``.
        """
        check_is_fitted(self, "method_")
        n = _num_samples(X)
        if self.estimator_ is None:
            return np.tile(self.prior_, (n, 1))
        inner = np.asarray(self.estimator_.predict_proba(X), dtype=np.float64)
        columns = _positions(self.classes_, np.asarray(self.estimator_.classes_))
        n_classes = self.classes_.shape[0]
        unseen_mass = 1.0 / (self.class_counts_.sum() + n_classes)
        n_unseen = n_classes - columns.shape[0]
        inner = np.clip(inner, 0.0, None)
        row_sums = inner.sum(axis=1, keepdims=True)
        inner = np.divide(
            inner,
            row_sums,
            out=np.full_like(inner, 1.0 / inner.shape[1]),
            where=row_sums > 0,
        )
        probas = np.full((n, n_classes), unseen_mass if n_unseen else 0.0)
        probas[:, columns] = inner * (1.0 - n_unseen * unseen_mass)
        return probas

    def predict(self, X: Any) -> npt.NDArray[Any]:
        """Most probable class of each item.

        Parameters
        ----------
        X : array-like, sparse matrix, DataFrame or list of shape (n, ...)

        Returns
        -------
        labels : ndarray of shape (n,)
            Elements of ``classes_``.
        """
        result: npt.NDArray[Any] = self.classes_[
            np.argmax(self.predict_proba(X), axis=1)
        ]
        return result


def _choose_method(method: str, *, n: int, n_seen: int, rarest: int) -> str:
    """Resolve ``"auto"`` and fall back to ``"none"`` when CV is impossible."""
    if rarest < 2:
        return "none"
    if method != "auto":
        return method
    if n < _MIN_CALIBRATION_SAMPLES:
        return "none"
    if n >= _MIN_ISOTONIC_SAMPLES:
        return "isotonic"
    return "sigmoid" if n_seen == 2 else "temperature"


def _seeded_clone(estimator: Any, seed: int) -> Any:
    """Clone ``estimator`` and seed every ``random_state`` parameter left at None."""
    clone_ = clone(estimator)
    if hasattr(clone_, "get_params") and hasattr(clone_, "set_params"):
        unseeded = {
            key: seed
            for key, value in clone_.get_params(deep=True).items()
            if (key == "random_state" or key.endswith("__random_state"))
            and value is None
        }
        if unseeded:
            clone_.set_params(**unseeded)
    return clone_


def _resolve_classes(
    classes: Any, y: npt.NDArray[Any], *, owner: str
) -> npt.NDArray[Any]:
    """The label set: ``classes`` checked against ``y``, or the labels of ``y``."""
    if classes is None:
        return np.unique(y)
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigError(
            f"The 'classes' parameter of {owner} must be a non-empty 1-D list of "
            f"labels. Got {classes!r} instead.",
            hint="Pass the project's full label set, e.g. classes=['ham', 'spam'].",
        )
    if np.unique(arr).size != arr.size:
        raise ConfigError(
            f"The 'classes' parameter of {owner} must list each label once. "
            f"Got {arr.tolist()!r} instead.",
            hint="Remove the duplicate labels.",
        )
    return arr


def _positions(
    classes: npt.NDArray[Any], labels: npt.NDArray[Any]
) -> npt.NDArray[np.intp]:
    """Column index in ``classes`` of each label; raises for unknown labels."""
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    try:
        found = np.searchsorted(sorted_classes, labels)
    except TypeError:
        found = np.full(labels.shape, sorted_classes.shape[0])
    found = np.clip(found, 0, sorted_classes.shape[0] - 1)
    matches = sorted_classes[found] == labels
    if not np.all(matches):
        unknown = np.unique(labels[~np.asarray(matches, dtype=bool)])[:5].tolist()
        raise InvalidInputError(
            f"Every label must be one of the classes {classes.tolist()!r}. "
            f"Got {unknown!r} instead.",
            hint="Add the label to the project's classes, or fix the labels.",
        )
    result: npt.NDArray[np.intp] = order[found].astype(np.intp)
    return result


@dataclass(frozen=True, eq=False)
class ReliabilityBins:
    """A reliability diagram: confidence against accuracy in equal-width bins.

    Attributes
    ----------
    edges : ndarray of shape (n_bins + 1,)
        Bin edges on [0, 1]; bin ``b`` holds confidences in
        ``(edges[b], edges[b + 1]]`` (the first bin also holds 0).
    mean_confidence : ndarray of shape (n_bins,)
        Mean top-label probability of the items in each bin; NaN when empty.
    accuracy : ndarray of shape (n_bins,)
        Fraction of the items in each bin whose top label is right; NaN when
        empty.
    counts : ndarray of shape (n_bins,), int
        Number of items in each bin; sums to ``n``.
    """

    edges: FloatArray
    mean_confidence: FloatArray
    accuracy: FloatArray
    counts: npt.NDArray[np.int64]

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean calibration gap."""
        total = int(self.counts.sum())
        if total == 0:
            return 0.0
        filled = self.counts > 0
        gaps = np.abs(self.accuracy[filled] - self.mean_confidence[filled])
        return float(np.sum(self.counts[filled] * gaps) / total)


def reliability_bins(
    y_true: Any, probas: Any, *, classes: Any = None, n_bins: int = 15
) -> ReliabilityBins:
    """Bin items by top-label confidence and compare with accuracy.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    probas : array-like of shape (n, k)
        Predicted class probabilities; rows sum to 1.
    classes : array-like of shape (k,), optional
        Label of each column of ``probas``. Defaults to the sorted labels of
        ``y_true`` when there are ``k`` of them, else to ``0..k-1``
        (``y_true`` must then be integer positions).
    n_bins : int, default=15
        Number of equal-width bins on [0, 1].

    Returns
    -------
    ReliabilityBins

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of
       modern neural networks", ICML 2017.
    """
    n_bins = check_int(n_bins, param="n_bins", owner="reliability_bins", low=1)
    p = check_probas(probas)
    y = np.asarray(y_true)
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise InvalidInputError(
            f"y_true must be a 1-D array with one label per row of probas "
            f"({p.shape[0]}). Got shape {y.shape} instead.",
            hint="Pass the true labels of the items that probas scores.",
        )
    labels = _column_labels(classes, y, p.shape[1])
    confidence = p.max(axis=1)
    correct = labels[np.argmax(p, axis=1)] == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(which, minlength=n_bins).astype(np.int64)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.where(counts > 0, conf_sum / counts, np.nan)
        accuracy = np.where(counts > 0, hit_sum / counts, np.nan)
    return ReliabilityBins(
        edges=edges, mean_confidence=mean_confidence, accuracy=accuracy, counts=counts
    )


def expected_calibration_error(
    y_true: Any, probas: Any, *, classes: Any = None, n_bins: int = 15
) -> float:
    """Top-label expected calibration error with equal-width bins.

    ``ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|`` over bins ``B_b`` of the
    top-label confidence [1]_. 0 means perfectly calibrated.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    probas : array-like of shape (n, k)
        Predicted class probabilities; rows sum to 1.
    classes : array-like of shape (k,), optional
        Label of each column; see :func:`reliability_bins`.
    n_bins : int, default=15
        Number of equal-width bins on [0, 1].

    Returns
    -------
    float
        In [0, 1].

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of
       modern neural networks", ICML 2017.
    """
    return reliability_bins(y_true, probas, classes=classes, n_bins=n_bins).ece


def _column_labels(classes: Any, y: npt.NDArray[Any], k: int) -> npt.NDArray[Any]:
    """The label of each of the ``k`` probability columns."""
    if classes is not None:
        labels = np.asarray(classes)
        if labels.ndim != 1 or labels.shape[0] != k:
            raise InvalidInputError(
                f"classes must name each of the {k} columns of probas. Got "
                f"{labels.shape[0] if labels.ndim == 1 else labels.shape} labels "
                "instead.",
                hint="Pass model.classes_ with model.predict_proba(X).",
            )
        return labels
    seen = np.unique(y)
    if seen.shape[0] == k:
        return seen
    if np.issubdtype(y.dtype, np.integer) and (
        y.size == 0 or (y.min() >= 0 and y.max() < k)
    ):
        return np.arange(k)
    raise InvalidInputError(
        f"Cannot tell which label each of the {k} columns of probas stands for: "
        f"y_true holds {seen.shape[0]} distinct labels.",
        hint="Pass classes=model.classes_.",
    )
