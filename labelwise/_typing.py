"""Named array types and the protocols models and embedders follow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "ArrayLike",
    "Embedder",
    "FloatArray",
    "IndexArray",
    "ProbabilisticModel",
    "RandomState",
]

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
ArrayLike = npt.ArrayLike
RandomState = np.random.Generator | int | None


@runtime_checkable
class ProbabilisticModel(Protocol):
    """Anything with ``fit(X, y)`` and ``predict_proba(X)`` (sklearn classifiers)."""

    def fit(self, X: Any, y: Any) -> Any: ...

    def predict_proba(self, X: Any) -> Any: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns raw items (texts) into a dense ``(n, d)`` float array."""

    def encode(self, items: Sequence[str]) -> Any: ...
