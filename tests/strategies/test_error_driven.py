"""Error-driven sampling: items near known failures first."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.exceptions import InvalidInputError
from labelwise.strategies import (
    ErrorDriven,
    ScoringContext,
    error_proximity_scores,
    error_reference_set,
)


def test_items_nearest_a_failure_rank_first(make_blobs):
    X, blob = make_blobs([40, 40, 40])
    failures = X[blob == 2][:2] + 0.05
    scores = ErrorDriven().score(ScoringContext(X=X, X_failures=failures))
    assert set(blob[np.argsort(-scores)[:40]]) == {2}
    assert np.all((scores > 0) & (scores <= 1))


def test_by_hand() -> None:
    X = np.array([[0.0], [1.0], [2.0], [4.0]])
    # Distances to the failure at 0: 0, 1, 2, 4; median 1.5.
    scores = error_proximity_scores(X, np.array([[0.0]]))
    np.testing.assert_allclose(scores, 1 / (1 + np.array([0, 1, 2, 4]) / 1.5))


def test_zero_median_distance_uses_scale_one() -> None:
    X = np.array([[0.0], [0.0], [0.0], [3.0]])
    np.testing.assert_allclose(
        error_proximity_scores(X, np.array([[0.0]])), [1, 1, 1, 1 / 4]
    )


def test_misclassified_labeled_items_are_references(make_blobs):
    X, blob = make_blobs([30, 30, 30])
    labeled = np.vstack([X[blob == 0][:3], X[blob == 1][:3]]) + 0.01
    correct = np.array([True, True, True, False, True, True])
    context = ScoringContext(X=X, X_labeled=labeled, labeled_correct=correct)
    strategy = ErrorDriven()
    assert strategy.available(context)
    scores = strategy.score(context)
    assert set(blob[np.argsort(-scores)[:30]]) == {1}
    reference = error_reference_set(2, X_labeled=labeled, labeled_correct=correct)
    np.testing.assert_array_equal(reference, labeled[[3]])


def test_reference_set_stacks_failures_then_mistakes() -> None:
    failures = np.ones((2, 3))
    labeled = np.arange(12.0).reshape(4, 3)
    reference = error_reference_set(
        3,
        X_failures=failures,
        X_labeled=labeled,
        labeled_correct=np.array([False, True, False, True]),
    )
    np.testing.assert_array_equal(reference, np.vstack([failures, labeled[[0, 2]]]))
    # Labeled items count only when correctness is known.
    assert error_reference_set(3, X_labeled=labeled).shape == (0, 3)


def test_unavailable_without_known_errors(make_blobs):
    X, _ = make_blobs([20])
    all_correct = ScoringContext(
        X=X, X_labeled=X[:5], labeled_correct=np.ones(5, dtype=bool)
    )
    strategy = ErrorDriven()
    for context in (
        ScoringContext(X=X),
        all_correct,
        ScoringContext(X=X, X_failures=np.empty((0, 2))),
        ScoringContext(X_failures=X[:2]),  # no pool features
    ):
        assert not strategy.available(context)
    with pytest.raises(InvalidInputError, match="at least one known error") as err:
        strategy.score(all_correct)
    assert "available()" in str(err.value)
    with pytest.raises(InvalidInputError, match="geometry features X"):
        strategy.score(ScoringContext(X_failures=X[:2]))


def test_rejects_inconsistent_references(make_blobs):
    X, _ = make_blobs([20])
    with pytest.raises(InvalidInputError, match="must have 2 features"):
        ErrorDriven().score(ScoringContext(X=X, X_failures=np.zeros((2, 3))))
    bad_mask = ScoringContext(
        X=X, X_labeled=X[:5], labeled_correct=np.array([True, False])
    )
    with pytest.raises(InvalidInputError, match="one entry per row of X_labeled"):
        ErrorDriven().score(bad_mask)
