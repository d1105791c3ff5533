"""Representative sampling within uncertainty, and information density."""

from __future__ import annotations

import numpy as np
import pytest

from labelwise.exceptions import ConfigError, InvalidInputError
from labelwise.strategies import (
    DensityWeighted,
    Representative,
    ScoringContext,
    entropy,
    information_density_scores,
    knn_density,
    margin,
    representative_scores,
)


def probas_with_margin(u: np.ndarray) -> np.ndarray:
    """Binary probabilities whose margin score is ``u``: ``p = (u/2, 1 - u/2)``."""
    return np.column_stack([u / 2, 1.0 - u / 2])


@pytest.fixture
def blob_pool(make_blobs):
    """Four blobs of 50; the 20 most uncertain items all sit in blob 0."""
    X, blob = make_blobs([50, 50, 50, 50])
    rng = np.random.default_rng(4)
    u = rng.uniform(0.0, 0.5, size=len(X))
    u[blob == 0] += 0.45
    return X, blob, probas_with_margin(u)


def test_one_representative_per_cluster(blob_pool):
    X, blob, probas = blob_pool
    u = margin(probas)
    scores = representative_scores(probas, X, 4, candidate_factor=50, rng=0)
    top = np.argsort(-scores)[:4]
    assert set(blob[top]) == {0, 1, 2, 3}
    for item in top:  # each is the most uncertain item of its blob
        assert u[item] == u[blob == blob[item]].max()
    # Plain margin would have spent the whole batch on blob 0.
    assert set(blob[np.argsort(-u)[:4]]) == {0}


def test_tiers_never_interleave(blob_pool):
    X, _, probas = blob_pool
    u = margin(probas)
    scores = representative_scores(probas, X, 3, candidate_factor=5, rng=0)
    candidates = np.argsort(-u)[:15]
    reps = np.argsort(-scores)[:3]
    others = np.setdiff1d(candidates, reps)
    rest = np.setdiff1d(np.arange(len(u)), candidates)
    assert scores[reps].min() > scores[others].max() > scores[rest].max()
    np.testing.assert_allclose(scores[reps], u[reps] + 4)
    np.testing.assert_allclose(scores[others], u[others] + 2)
    np.testing.assert_array_equal(scores[rest], u[rest])


def test_candidate_factor_limits_the_candidates(blob_pool):
    X, blob, probas = blob_pool
    # With 2 candidates per slot, all 8 candidates are blob 0's most uncertain.
    scores = representative_scores(probas, X, 4, candidate_factor=2, rng=0)
    top = np.argsort(-scores)[:8]
    assert set(blob[top]) == {0}
    assert np.sum(scores >= 2) == 8


def test_batch_at_least_the_candidates_makes_every_candidate_a_representative(
    blob_pool,
):
    X, _, probas = blob_pool
    u = margin(probas)
    scores = representative_scores(probas, X, 30, candidate_factor=1, rng=0)
    top = np.argsort(-u)[:30]
    np.testing.assert_allclose(scores[top], u[top] + 4)
    assert np.sum(scores >= 4) == 30
    everything = representative_scores(probas, X, 500, rng=0)
    np.testing.assert_allclose(everything, u + 4)


def test_zero_batch_is_plain_uncertainty(blob_pool):
    X, _, probas = blob_pool
    np.testing.assert_array_equal(
        representative_scores(probas, X, 0, rng=0), margin(probas)
    )


def test_selected_items_are_never_candidates(blob_pool):
    X, blob, probas = blob_pool
    u = margin(probas)
    most_uncertain = np.argsort(-u)[:3]
    scores = representative_scores(
        probas, X, 4, candidate_factor=50, rng=0, exclude=most_uncertain
    )
    assert np.all(scores[most_uncertain] == -1.0)
    assert set(blob[np.argsort(-scores)[:4]]) == {0, 1, 2, 3}


def test_uncertainty_measure_is_a_parameter(blob_pool):
    X, _, probas = blob_pool
    three = np.column_stack([probas * 0.9, np.full(len(probas), 0.1)])
    scores = Representative(uncertainty="entropy").score(
        ScoringContext(probas=three, X=X), batch_size=0
    )
    np.testing.assert_allclose(scores, entropy(three))


def test_representative_strategy_matches_the_function(blob_pool):
    X, _, probas = blob_pool
    strategy = Representative(candidate_factor=3, n_init=2)
    context = ScoringContext(probas=probas, X=X, selected=np.array([5, 9]))
    np.testing.assert_array_equal(
        strategy.score(context, batch_size=6, rng=11),
        representative_scores(
            probas, X, 6, candidate_factor=3, n_init=2, rng=11, exclude=np.array([5, 9])
        ),
    )
    # Without a batch size the strategy assumes 10 slots.
    np.testing.assert_array_equal(
        strategy.score(context, rng=11),
        representative_scores(
            probas,
            X,
            10,
            candidate_factor=3,
            n_init=2,
            rng=11,
            exclude=np.array([5, 9]),
        ),
    )


def test_rejects_features_of_another_pool(blob_pool):
    X, _, probas = blob_pool
    with pytest.raises(InvalidInputError, match="one row per pool item"):
        representative_scores(probas, X[:-1], 4)


@pytest.mark.parametrize(
    "params",
    [
        {"uncertainty": "variance"},
        {"candidate_factor": 0},
        {"n_init": 0},
    ],
)
def test_representative_rejects_bad_params(params):
    with pytest.raises(ConfigError, match="parameter of Representative"):
        Representative(**params)


# --- information density -----------------------------------------------------


def test_knn_density_by_hand() -> None:
    X = np.array([[0.0], [1.0], [3.0]])
    # Nearest other point: 1, 1, 2 away.
    np.testing.assert_allclose(knn_density(X, n_neighbors=1), [1 / 2, 1 / 2, 1 / 3])
    # Two nearest others: mean distances 2, 1.5, 2.5.
    np.testing.assert_allclose(knn_density(X, n_neighbors=2), [1 / 3, 1 / 2.5, 1 / 3.5])
    # More neighbours than other points: all of them.
    np.testing.assert_allclose(
        knn_density(X, n_neighbors=10), knn_density(X, n_neighbors=2)
    )


def test_knn_density_ranks_outliers_lowest(make_blobs):
    X, _ = make_blobs([100])
    X = np.vstack([X, [[80.0, 80.0]]])
    density = knn_density(X, n_neighbors=5)
    assert density.argmin() == len(X) - 1
    assert np.all((density > 0) & (density <= 1))


def test_knn_density_samples_large_pools_with_the_rng(make_blobs):
    X, _ = make_blobs([200, 200])
    full = knn_density(X, n_neighbors=5)
    first = knn_density(X, n_neighbors=5, sample_size=50, rng=1)
    again = knn_density(X, n_neighbors=5, sample_size=50, rng=1)
    other = knn_density(X, n_neighbors=5, sample_size=50, rng=2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.all(first <= full + 1e-12)  # a sparser sample has farther neighbours
    # Without sampling the rng is unused.
    np.testing.assert_array_equal(full, knn_density(X, n_neighbors=5, rng=9))


def test_information_density_is_uncertainty_times_density(make_blobs):
    X, _ = make_blobs([60, 10])
    probas = probas_with_margin(np.random.default_rng(0).uniform(size=len(X)))
    density = knn_density(X, n_neighbors=4)
    for beta in (0.0, 0.5, 2.0):
        np.testing.assert_allclose(
            information_density_scores(probas, X, beta=beta, n_neighbors=4),
            margin(probas) * density**beta,
        )


def test_density_weighted_prefers_dense_regions_at_equal_uncertainty(
    make_blobs,
):
    X, _ = make_blobs([50])
    X = np.vstack([X, [[60.0, 60.0]]])
    probas = np.full((len(X), 2), 0.5)  # every item equally uncertain
    scores = DensityWeighted(n_neighbors=3).score(ScoringContext(probas=probas, X=X))
    assert scores.argmin() == len(X) - 1
    flat = DensityWeighted(beta=0.0).score(ScoringContext(probas=probas, X=X))
    np.testing.assert_array_equal(flat, np.ones(len(X)))


def test_density_weighted_strategy_params(make_blobs):
    X, _ = make_blobs([80, 80])
    probas = probas_with_margin(np.random.default_rng(0).uniform(size=len(X)))
    strategy = DensityWeighted(
        uncertainty="entropy", beta=2.0, n_neighbors=3, sample_size=40
    )
    np.testing.assert_array_equal(
        strategy.score(ScoringContext(probas=probas, X=X), rng=5),
        information_density_scores(
            probas,
            X,
            uncertainty="entropy",
            beta=2.0,
            n_neighbors=3,
            sample_size=40,
            rng=5,
        ),
    )


@pytest.mark.parametrize(
    "params",
    [
        {"uncertainty": "nope"},
        {"beta": -1.0},
        {"beta": float("nan")},
        {"n_neighbors": 0},
        {"sample_size": 1},
    ],
)
def test_density_weighted_rejects_bad_params(params):
    with pytest.raises(ConfigError, match="parameter of DensityWeighted"):
        DensityWeighted(**params)
