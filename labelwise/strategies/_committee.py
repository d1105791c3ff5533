"""Query-by-committee: scores from the disagreement of several models.

A committee of ``m`` models (bootstrap replicas, different seeds or model
families) each gives class probabilities for the pool; items on which the
members disagree are the ones to label (seed 004, pattern 2).

References
----------
McCallum, A. and Nigam, K. (1998). Employing EM and pool-based active learning
for text classification. ICML, 350-358.

Settles, B. (2009). Active Learning Literature Survey. University of
Wisconsin-Madison, Computer Sciences Technical Report 1648, section 3.2.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from labelwise._typing import FloatArray, RandomState
from labelwise._validation import check_probas
from labelwise.exceptions import InvalidInputError
from labelwise.strategies._base import ScoringContext, Strategy

__all__ = [
    "ConsensusKL",
    "VoteEntropy",
    "check_committee_probas",
    "consensus_kl",
    "vote_entropy",
]

_STACK_HINT = (
    "Stack each member's predict_proba output along a new first axis: "
    "np.stack([model.predict_proba(X) for model in committee])."
)


def check_committee_probas(committee_probas: Any) -> FloatArray:
    """Validate committee probabilities of shape ``(m, n, k)`` with ``m >= 2``.

    Every member's rows are checked like :func:`labelwise._validation.check_probas`
    (finite, in [0, 1], rows sum to 1) on the ``(m * n, k)`` view.

    Returns
    -------
    committee_probas : ndarray of shape (m, n, k)
        As float64; a copy only when the dtype had to change.

    Raises
    ------
    InvalidInputError
        If the shape is not ``(m, n, k)`` with ``m >= 2`` and ``k >= 2``, or a
        member's rows are not probabilities.
    """
    arr = np.asarray(committee_probas, dtype=np.float64)
    if arr.ndim != 3:
        raise InvalidInputError(
            "committee_probas must be a 3-D array of shape (n_members, n_items, "
            f"n_classes). Got shape {arr.shape} instead.",
            hint=_STACK_HINT,
        )
    m, n, k = arr.shape
    if m < 2:
        raise InvalidInputError(
            "committee_probas must hold at least 2 committee members (axis 0). "
            f"Got {m}.",
            hint="Train several models (bootstrap replicas or different seeds); "
            "use 'margin' or 'entropy' for a single model.",
        )
    try:
        check_probas(arr.reshape(m * n, k), name="committee_probas")
    except InvalidInputError as err:
        raise InvalidInputError(
            f"{err.message} Rows are numbered over the (n_members * n_items, "
            f"n_classes) view: row r is member r // {n}, item r % {n}.",
            hint=err.hint,
        ) from None
    return arr


def vote_entropy(committee_probas: FloatArray) -> FloatArray:
    """Entropy of the members' hard votes, normalised to ``[0, 1]``.

    Each member votes for its most probable class; the score is the entropy of
    the vote distribution divided by ``log(min(m, k))``, its largest attainable
    value, so 1 means the votes are spread as evenly as they can be.

    Parameters
    ----------
    committee_probas : ndarray of shape (m, n, k)
        Class probabilities of each of ``m >= 2`` members for ``n`` items.

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``[0, 1]``; 0 when all members agree.

    References
    ----------
    Dagan, I. and Engelson, S. P. (1995). Committee-based sampling for training
    probabilistic classifiers. ICML, 150-157. Settles (2009), equation 3.
    """
    p = check_committee_probas(committee_probas)
    m, n, k = p.shape
    votes = p.argmax(axis=2)  # (m, n)
    flat = (votes + (np.arange(n, dtype=np.intp) * k)[np.newaxis, :]).ravel()
    counts = np.bincount(flat, minlength=n * k).reshape(n, k)
    fractions = counts / m
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, fractions * np.log(fractions), 0.0)
    scores = -terms.sum(axis=1) / np.log(min(m, k))
    return np.asarray(np.clip(scores, 0.0, 1.0), dtype=np.float64)


def consensus_kl(committee_probas: FloatArray) -> FloatArray:
    """Mean Kullback-Leibler divergence of each member from the consensus.

    The consensus is the members' mean distribution ``c = mean_j p_j``; the score
    is ``mean_j KL(p_j || c)`` in nats (``0 log 0 = 0``). The loop runs over the
    ``m`` members, so the extra memory is ``O(n k)``.

    Parameters
    ----------
    committee_probas : ndarray of shape (m, n, k)
        Class probabilities of each of ``m >= 2`` members for ``n`` items.

    Returns
    -------
    scores : ndarray of shape (n,)
        Non-negative, at most ``log m``; 0 when all members agree.

    References
    ----------
    McCallum and Nigam (1998), section 4; Settles (2009), equation 4.
    """
    p = check_committee_probas(committee_probas)
    m, n, k = p.shape
    # check_probas tolerates values down to -1e-6; clip them so logs stay finite.
    consensus = np.zeros((n, k), dtype=np.float64)
    for member in p:
        consensus += np.maximum(member, 0.0)
    consensus /= m
    with np.errstate(divide="ignore"):
        log_consensus = np.log(consensus)
    total = np.zeros(n, dtype=np.float64)
    for member in p:
        # member > 0 implies consensus >= member / m > 0, so both logs are finite.
        positive = member > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log(np.where(positive, member, 1.0)) - log_consensus
            total += np.where(positive, member * log_ratio, 0.0).sum(axis=1)
    return np.asarray(np.maximum(total / m, 0.0), dtype=np.float64)


class _CommitteeStrategy(Strategy):
    requires: ClassVar[tuple[str, ...]] = ("committee_probas",)
    reads_probas: ClassVar[bool] = True


class VoteEntropy(_CommitteeStrategy):
    """Query-by-committee with vote entropy: :func:`vote_entropy`."""

    name = "vote_entropy"
    pointwise = True

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.committee_probas is not None
        return vote_entropy(context.committee_probas)


class ConsensusKL(_CommitteeStrategy):
    """Query-by-committee with KL divergence to the consensus: :func:`consensus_kl`."""

    name = "consensus_kl"
    pointwise = True

    def score(
        self,
        context: ScoringContext,
        *,
        batch_size: int | None = None,
        rng: RandomState = None,
    ) -> FloatArray:
        assert context.committee_probas is not None
        return consensus_kl(context.committee_probas)
