"""Committee variance for regression."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from labelwise.exceptions import InvalidInputError
from labelwise.strategies import (
    RegressionVariance,
    ScoringContext,
    prediction_variance,
)


def test_by_hand() -> None:
    predictions = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, -2.0]])
    np.testing.assert_array_equal(prediction_variance(predictions), [1.0, 0.0, 4.0])


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 6), st.integers(0, 20)),
        elements=st.floats(-1e6, 1e6),
    )
)
def test_equals_numpy_var(predictions: np.ndarray) -> None:
    np.testing.assert_array_equal(
        prediction_variance(predictions), np.var(predictions, axis=0)
    )


def test_strategy_reads_committee_predictions() -> None:
    predictions = np.random.default_rng(0).normal(size=(5, 40))
    scores = RegressionVariance().score(
        ScoringContext(committee_predictions=predictions)
    )
    np.testing.assert_array_equal(scores, np.var(predictions, axis=0, ddof=0))
    assert not RegressionVariance.reads_probas


@pytest.mark.parametrize(
    ("predictions", "match"),
    [
        (np.zeros((1, 5)), "at least 2 members"),
        (np.zeros(5), "2-D array"),
        (np.array([[1.0, np.nan], [1.0, 2.0]]), "must be finite"),
        (np.array([[1.0, np.inf], [1.0, 2.0]]), "must be finite"),
        (np.array([["a", "b"], ["c", "d"]]), "must be numeric"),
    ],
)
def test_rejects_bad_predictions(predictions, match):
    with pytest.raises(InvalidInputError, match=match) as err:
        prediction_variance(predictions)
    assert err.value.hint
