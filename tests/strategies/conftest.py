"""Shared fixtures for the strategy unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

BlobFactory = Callable[..., tuple[np.ndarray, np.ndarray]]


def _blobs(
    sizes: Sequence[int], *, d: int = 2, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs: centres 20 apart on the axes, ``spread`` wide.

    Returns the points ``(sum(sizes), d)`` and each point's blob ``(sum(sizes),)``.
    """
    rng = np.random.default_rng(seed)
    centers = np.zeros((len(sizes), d))
    for i in range(len(sizes)):
        centers[i, i % d] = 20.0 * (1 + i // d) * (1 if i % 2 == 0 else -1)
    blob = np.repeat(np.arange(len(sizes)), sizes)
    return centers[blob] + rng.normal(scale=spread, size=(len(blob), d)), blob


@pytest.fixture
def make_blobs() -> BlobFactory:
    return _blobs


@pytest.fixture
def random_probas() -> Callable[..., np.ndarray]:
    def make(n: int, k: int = 3, seed: int = 0) -> np.ndarray:
        raw = np.random.default_rng(seed).gamma(1.0, size=(n, k))
        probas: np.ndarray = raw / raw.sum(axis=1, keepdims=True)
        return probas

    return make
