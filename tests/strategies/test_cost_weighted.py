"""Cost-weighted scores: information per unit of cost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.exceptions import ConfigError, InvalidInputError
from labelwise.strategies import (
    CostWeighted,
    ScoringContext,
    confidence_bucket_scores,
    margin,
    per_unit_cost,
)


def test_per_unit_cost_by_hand() -> None:
    # Ranks (ties averaged) 1, 2.5, 2.5, 4 out of 4.
    scores = per_unit_cost(np.array([0.1, 0.5, 0.5, 0.9]), np.array([1, 1, 2, 1.0]))
    np.testing.assert_allclose(scores, [0.25, 0.625, 0.3125, 1.0])


@settings(max_examples=50, deadline=None)
@given(
    base=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
    cost=st.floats(0.01, 100),
)
def test_equal_costs_keep_the_base_order(base: list[float], cost: float) -> None:
    scores = per_unit_cost(np.array(base), np.full(len(base), cost))
    assert np.all((scores > 0) & (scores <= 1 / cost + 1e-12))
    # Same order as the base, ties included.
    order = np.argsort(base, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)
    assert np.array_equal(
        np.diff(np.array(base)[order]) == 0, np.diff(scores[order]) == 0
    )


def test_cheaper_items_win_at_equal_base_score() -> None:
    probas = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.5, 0.5]])
    costs = np.array([3.0, 1.0, 1.0, 2.0])
    scores = CostWeighted().score(ScoringContext(probas=probas, costs=costs))
    assert list(np.argsort(-scores)) == [1, 3, 0, 2]


@pytest.mark.parametrize(
    ("costs", "match"),
    [
        (np.array([1.0, 0.0, 2.0]), "finite and > 0"),
        (np.array([1.0, -1.0, 2.0]), "finite and > 0"),
        (np.array([1.0, np.nan, 2.0]), "finite and > 0"),
        (np.array([1.0, 2.0]), "one entry per pool item"),
        (np.ones((3, 1)), "one entry per pool item"),
    ],
)
def test_rejects_bad_costs(costs, match):
    with pytest.raises(InvalidInputError, match=match) as err:
        per_unit_cost(np.array([0.1, 0.2, 0.3]), costs)
    assert err.value.hint


def test_rejects_non_finite_scores() -> None:
    with pytest.raises(InvalidInputError, match="finite 1-D"):
        per_unit_cost(np.array([0.1, np.nan]), np.ones(2))


def test_follows_the_base_strategy() -> None:
    default = CostWeighted()
    assert default.requires == ("probas", "costs")
    assert default.reads_probas and not default.uses_rng
    kcenter = CostWeighted(base="kcenter")
    assert kcenter.requires == ("X", "costs")
    assert not kcenter.reads_probas
    buckets = CostWeighted(base="confidence_buckets", base_params={"n_buckets": 3})
    assert buckets.uses_rng
    probas = np.random.default_rng(0).dirichlet([1, 1, 1], size=50)
    costs = np.linspace(1, 2, 50)
    context = ScoringContext(probas=probas, costs=costs)
    np.testing.assert_array_equal(
        buckets.score(context, rng=4),
        per_unit_cost(confidence_bucket_scores(probas, n_buckets=3, rng=4), costs),
    )
    np.testing.assert_array_equal(
        default.score(context), per_unit_cost(margin(probas), costs)
    )


def test_unavailable_without_costs() -> None:
    probas = np.full((4, 2), 0.5)
    assert not CostWeighted().available(ScoringContext(probas=probas))
    with pytest.raises(InvalidInputError, match=r"needs context\.costs"):
        CostWeighted().score(ScoringContext(probas=probas))


@pytest.mark.parametrize(
    "params",
    [
        {"base": "cost_weighted"},
        {"base": "nope"},
        {"base_params": [("n_buckets", 3)]},
    ],
)
def test_rejects_bad_params(params):
    with pytest.raises(ConfigError, match="parameter of CostWeighted"):
        CostWeighted(**params)


def test_bad_base_params_reach_the_base() -> None:
    with pytest.raises(ConfigError, match="parameter of ConfidenceBuckets"):
        CostWeighted(base="confidence_buckets", base_params={"n_buckets": 0})
