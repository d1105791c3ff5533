"""Oracles answer label queries in a simulation: perfectly, or with noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from labelwise._typing import IndexArray, RandomState
from labelwise._validation import check_interval, check_rng

__all__ = ["NoisyOracle", "Oracle"]


class Oracle:
    """Answers with the true label.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        The true label of every pool item.
    """

    def __init__(self, y_true: npt.ArrayLike) -> None:
        self.answers: npt.NDArray[np.str_] = np.asarray(y_true).astype(str)

    def query(self, positions: IndexArray) -> npt.NDArray[np.str_]:
        """The answers for pool positions ``positions``."""
        return self.answers[positions]

    @property
    def error_rate(self) -> float:
        """Share of wrong answers (0 for a perfect oracle)."""
        return 0.0


class NoisyOracle(Oracle):
    """An annotator who answers a random *other* class with rate ``error_rate``.

    Answers are drawn once per item when the oracle is built, so every policy
    run on the same seed sees the same (noisy) answer for the same item, and
    asking twice gives the same answer.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        The true labels.
    classes : sequence of str
        The label set (wrong answers are drawn from it).
    error_rate : float in [0, 1)
        Probability that an answer is wrong.
    rng : Generator, int or None
        Seeds which items are answered wrongly, and how.
    """

    def __init__(
        self,
        y_true: npt.ArrayLike,
        classes: Sequence[str],
        error_rate: float,
        rng: RandomState = None,
    ) -> None:
        super().__init__(y_true)
        self._error_rate = check_interval(
            error_rate,
            param="error_rate",
            owner="NoisyOracle",
            low=0,
            high=1,
            closed="left",
        )
        generator = check_rng(rng)
        labels = np.asarray(sorted(set(classes) | set(self.answers.tolist())))
        k = labels.size
        truth = np.searchsorted(labels, self.answers)
        wrong = generator.random(truth.size) < self._error_rate
        # A uniform other class: shift by 1..k-1 positions, modulo k.
        shift = generator.integers(1, max(k, 2), size=truth.size)
        noisy = np.where(wrong, (truth + shift) % k, truth)
        self.answers = labels[noisy]
        self.flipped: npt.NDArray[np.bool_] = wrong

    @property
    def error_rate(self) -> float:
        """The configured probability of a wrong answer."""
        return self._error_rate
