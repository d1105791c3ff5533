"""Input checks shared by the whole library, with one message format.

Parameter messages read like scikit-learn's:
"The 'random_fraction' parameter of BatchPolicy must be a float in the range
[0, 1]. Got 1.5 instead."
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np

from labelwise._typing import FloatArray, RandomState
from labelwise.exceptions import ConfigError, InvalidInputError

__all__ = [
    "check_array_2d",
    "check_in_options",
    "check_int",
    "check_interval",
    "check_probas",
    "check_rng",
]

_PROBA_ATOL = 1e-6


def _param_message(param: str, owner: str, expected: str, got: object) -> str:
    return (
        f"The {param!r} parameter of {owner} must be {expected}. Got {got!r} instead."
    )


def check_interval(
    value: object,
    *,
    param: str,
    owner: str,
    low: float | None = None,
    high: float | None = None,
    closed: str = "both",
) -> float:
    """Check ``value`` is a real number in ``[low, high]`` (``closed`` says which ends).

    Returns the value as a float; raises :class:`ConfigError` otherwise.
    """
    left = closed in ("both", "left")
    right = closed in ("both", "right")
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    expected = (
        f"a float in the range {'[' if left else '('}{lo}, {hi}{']' if right else ')'}"
    )
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(_param_message(param, owner, expected, value))
    number = float(value)
    ok = math.isfinite(number)
    if ok and low is not None:
        ok = number >= low if left else number > low
    if ok and high is not None:
        ok = number <= high if right else number < high
    if not ok:
        raise ConfigError(_param_message(param, owner, expected, value))
    return number


def check_int(
    value: object,
    *,
    param: str,
    owner: str,
    low: int | None = None,
    high: int | None = None,
) -> int:
    """Check ``value`` is an int in ``[low, high]``; returns it."""
    lo = "-inf" if low is None else str(low)
    hi = "inf" if high is None else str(high)
    expected = f"an int in the range [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(_param_message(param, owner, expected, value))
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(_param_message(param, owner, expected, value))
    return number


def check_in_options(
    value: object, *, param: str, owner: str, options: Collection[str]
) -> str:
    """Check ``value`` is one of ``options``; returns it."""
    if not isinstance(value, str) or value not in options:
        expected = "one of " + ", ".join(repr(o) for o in sorted(options))
        raise ConfigError(_param_message(param, owner, expected, value))
    return value


def check_rng(rng: RandomState) -> np.random.Generator:
    """Normalise ``rng`` (a Generator, a seed or None) into a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(None if rng is None else int(rng))
    raise ConfigError(
        f"rng must be a numpy.random.Generator, an int seed or None. Got {rng!r} "
        "instead. Pass a seed such as rng=0 for reproducible results."
    )


def check_probas(probas: Any, *, name: str = "probas") -> FloatArray:
    """Validate class probabilities: shape ``(n, k)``, k >= 2, in [0, 1], rows sum to 1.

    Returns a float64 array (a copy only when the dtype had to change); never
    modifies the input.
    """
    arr = np.asarray(probas, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InvalidInputError(
            f"{name} must be a 2-D array of shape (n_items, n_classes) with at least "
            f"2 classes. Got shape {arr.shape} instead.",
            hint="Pass model.predict_proba(X), not predict(X).",
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise InvalidInputError(
            f"{name} must be finite. Got NaN or infinity in {bad} rows.",
            hint="Check the model's output; calibrate it with labelwise.calibration.",
        )
    if arr.size and (arr.min() < -_PROBA_ATOL or arr.max() > 1 + _PROBA_ATOL):
        raise InvalidInputError(
            f"{name} must lie in [0, 1]. Got values in "
            f"[{arr.min():.4g}, {arr.max():.4g}] instead.",
            hint="Pass probabilities (predict_proba), not scores or logits.",
        )
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-4
    if np.any(off):
        first = int(np.flatnonzero(off)[0])
        raise InvalidInputError(
            f"Each row of {name} must sum to 1. Got {int(off.sum())} rows that do not "
            f"(row {first} sums to {sums[first]:.6g}).",
            hint="Normalise the rows, or pass predict_proba output instead of scores.",
        )
    return arr


def check_array_2d(X: Any, *, name: str = "X") -> FloatArray:
    """Validate a finite 2-D float feature array; returns it as float64."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidInputError(
            f"{name} must be a 2-D array of shape (n_items, n_features). "
            f"Got shape {arr.shape} instead.",
            hint="Reshape a single feature with X.reshape(-1, 1).",
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(
            f"{name} must be finite. Got NaN or infinity.",
            hint="Impute or drop missing values before scoring.",
        )
    return arr
