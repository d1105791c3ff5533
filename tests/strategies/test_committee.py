"""Query-by-committee: vote entropy and KL divergence to the consensus."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.exceptions import InvalidInputError
from labelwise.strategies import (
    ConsensusKL,
    ScoringContext,
    VoteEntropy,
    consensus_kl,
    vote_entropy,
)


def one_hot(votes: list[list[int]], k: int) -> np.ndarray:
    """Committee probabilities where member j puts 0.9 on votes[j][i]."""
    v = np.asarray(votes)
    p = np.full((*v.shape, k), 0.1 / (k - 1))
    np.put_along_axis(p, v[..., np.newaxis], 0.9, axis=2)
    return p


def test_vote_entropy_by_hand() -> None:
    # 4 members, 3 classes. Item 0: votes 0,0,1,2 -> fractions 1/2, 1/4, 1/4.
    # Item 1: unanimous. Item 2: 2-2 split.
    p = one_hot([[0, 0, 1], [0, 0, 1], [1, 0, 2], [2, 0, 2]], k=3)
    expected_0 = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(3)
    expected_2 = -(2 * 0.5 * math.log(0.5)) / math.log(3)
    np.testing.assert_allclose(vote_entropy(p), [expected_0, 0.0, expected_2])


def test_vote_entropy_normalises_by_the_smaller_of_members_and_classes() -> None:
    # Two members on five classes can at most split 1-1: that is the maximum, 1.
    p = one_hot([[0, 3], [4, 3]], k=5)
    np.testing.assert_allclose(vote_entropy(p), [1.0, 0.0])


def test_consensus_kl_by_hand() -> None:
    p = np.array([[[0.8, 0.2], [1.0, 0.0]], [[0.4, 0.6], [0.0, 1.0]]])
    c = [0.6, 0.4]
    kl_1 = 0.8 * math.log(0.8 / c[0]) + 0.2 * math.log(0.2 / c[1])
    kl_2 = 0.4 * math.log(0.4 / c[0]) + 0.6 * math.log(0.6 / c[1])
    # Item 1: two certain members that disagree: each is log 2 from [1/2, 1/2].
    np.testing.assert_allclose(
        consensus_kl(p), [(kl_1 + kl_2) / 2, math.log(2)], rtol=1e-12
    )


def test_agreeing_members_score_zero() -> None:
    member = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    p = np.stack([member, member, member])
    np.testing.assert_array_equal(vote_entropy(p), [0.0, 0.0])
    np.testing.assert_allclose(consensus_kl(p), [0.0, 0.0], atol=1e-15)


@settings(max_examples=50, deadline=None)
@given(
    m=st.integers(2, 6),
    n=st.integers(1, 30),
    k=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
    sparsity=st.floats(0.0, 0.9),
)
def test_ranges(m: int, n: int, k: int, seed: int, sparsity: float) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.gamma(1.0, size=(m, n, k)) * (rng.random((m, n, k)) >= sparsity)
    raw[..., 0] += 1e-3  # keep every row's sum positive
    p = raw / raw.sum(axis=2, keepdims=True)
    ve = vote_entropy(p)
    kl = consensus_kl(p)
    assert ve.shape == kl.shape == (n,)
    assert np.all((ve >= 0) & (ve <= 1))
    assert np.all((kl >= 0) & (kl <= math.log(m) + 1e-12))


@pytest.mark.parametrize("scorer", [vote_entropy, consensus_kl])
def test_rejects_a_single_member(scorer):
    p = np.full((1, 4, 2), 0.5)
    with pytest.raises(InvalidInputError, match="at least 2 committee members") as err:
        scorer(p)
    assert "margin" in str(err.value)


@pytest.mark.parametrize("scorer", [vote_entropy, consensus_kl])
def test_rejects_two_dimensional_input(scorer):
    with pytest.raises(InvalidInputError, match="3-D array") as err:
        scorer(np.full((4, 2), 0.5))
    assert "np.stack" in str(err.value)


def test_bad_row_names_member_and_item() -> None:
    p = np.full((3, 5, 2), 0.5)
    p[1, 2] = [0.5, 0.2]  # member 1, item 2: row 1 * 5 + 2 = 7 of the view
    with pytest.raises(InvalidInputError, match="sum to 1") as err:
        vote_entropy(p)
    assert "row 7 sums to" in str(err.value)
    assert "member r // 5, item r % 5" in str(err.value)


def test_strategies_read_committee_probas() -> None:
    p = one_hot([[0, 1], [1, 1], [2, 1]], k=3)
    context = ScoringContext(committee_probas=p)
    np.testing.assert_array_equal(VoteEntropy().score(context), vote_entropy(p))
    np.testing.assert_array_equal(ConsensusKL().score(context), consensus_kl(p))
    assert VoteEntropy().score(context)[0] > VoteEntropy().score(context)[1]
    assert VoteEntropy.requires == ConsensusKL.requires == ("committee_probas",)
