"""CLUE: uncertainty-weighted k-means, the item nearest each centre."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from labelwise.exceptions import ConfigError
from labelwise.policy import BatchPolicy, MixComponent, build_batch
from labelwise.strategies import (
    ScoringContext,
    WeightedClusters,
    entropy,
    weighted_cluster_scores,
)


def binary(u: np.ndarray) -> np.ndarray:
    """Binary probabilities whose entropy grows with ``u`` in [0, 1]."""
    p = 0.5 * u
    return np.column_stack([p, 1.0 - p])


@pytest.fixture
def blob_pool(make_blobs):
    """Four blobs of 50; blob 3 is certain, each blob has one far, uncertain outlier."""
    X, blob = make_blobs([50, 50, 50, 50])
    rng = np.random.default_rng(4)
    u = rng.uniform(0.3, 0.9, size=len(X))
    u[blob == 3] = 1e-6
    outliers = np.array([0, 50, 100])
    X = X.copy()
    X[outliers] += 8.0  # far from every centre
    u[outliers] = 1.0  # and the most uncertain of all
    return X, blob, binary(u), outliers


def test_picks_typical_items_of_the_uncertain_clusters(blob_pool):
    X, blob, probas, outliers = blob_pool
    scores = weighted_cluster_scores(probas, X, 3, rng=0)
    picks = np.argsort(-scores)[:3]
    # One per uncertain blob, none of the outliers, none from the certain blob.
    assert set(blob[picks]) == {0, 1, 2}
    assert not set(picks) & set(outliers)
    # The most uncertain item per cluster (representative sampling) would have
    # been exactly the outliers.
    u = entropy(probas)
    assert set(np.argsort(-u)[:3]) == set(outliers)


def test_the_picks_are_the_members_nearest_the_weighted_centres(blob_pool):
    X, _, probas, _ = blob_pool
    u = entropy(probas)
    scores = weighted_cluster_scores(probas, X, 4, rng=7)
    # k-means sees the candidates in decreasing uncertainty (pool order free).
    order = np.argsort(-u, kind="stable")
    model = KMeans(n_clusters=4, n_init=1, random_state=_seed_of(7))
    model.fit(X[order], sample_weight=u[order] + 1e-9)
    distance = model.transform(X[order])
    expected = set()
    for c in range(4):
        members = np.flatnonzero(model.labels_ == c)
        expected.add(int(order[members[np.argmin(distance[members, c])]]))
    assert set(np.flatnonzero(scores >= 4)) == expected


def _seed_of(rng: int) -> int:
    return int(np.random.default_rng(rng).integers(np.iinfo(np.int32).max))


def test_tiers_and_candidates(blob_pool):
    X, _, probas, _ = blob_pool
    u = entropy(probas)
    scores = weighted_cluster_scores(
        probas, X, 3, candidate_factor=5, min_candidates=1, rng=0
    )
    candidates = np.argsort(-u, kind="stable")[:15]
    picks = np.flatnonzero(scores >= 4)
    others = np.setdiff1d(candidates, picks)
    rest = np.setdiff1d(np.arange(len(u)), candidates)
    assert len(picks) == 3 and set(picks) <= set(candidates)
    np.testing.assert_allclose(scores[picks], u[picks] + 4)
    np.testing.assert_allclose(scores[others], u[others] + 2)
    np.testing.assert_array_equal(scores[rest], u[rest])


def test_selected_items_are_never_candidates(blob_pool):
    X, _, probas, _ = blob_pool
    first = np.argsort(-weighted_cluster_scores(probas, X, 3, rng=0))[:3]
    scores = weighted_cluster_scores(probas, X, 3, rng=0, exclude=first)
    assert np.all(scores[first] == -1.0)
    assert np.sum(scores >= 4) == 3


def test_small_candidate_sets_and_duplicates():
    X = np.zeros((6, 2))
    X[3:] = 1.0  # two distinct points only
    probas = binary(np.linspace(0.2, 0.9, 6))
    scores = weighted_cluster_scores(probas, X, 4, rng=0)
    # Two clusters at most: one pick per distinct point.
    assert np.sum(scores >= 4) == 2
    everything = weighted_cluster_scores(probas, X[:, :1] + np.arange(6)[:, None], 9)
    np.testing.assert_allclose(everything, entropy(probas) + 4)
    np.testing.assert_allclose(
        weighted_cluster_scores(probas, X, 0, rng=0), entropy(probas) + 2
    )


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(5, 60),
    batch=st.integers(1, 12),
    seed=st.integers(0, 2**16),
    n_excluded=st.integers(0, 4),
)
def test_exactly_min_batch_picks_none_excluded_deterministic(
    n, batch, seed, n_excluded
):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    probas = rng.dirichlet(np.ones(3), size=n)
    exclude = rng.choice(n, size=min(n_excluded, n - 1), replace=False)
    scores = weighted_cluster_scores(probas, X, batch, rng=seed, exclude=exclude)
    again = weighted_cluster_scores(probas, X, batch, rng=seed, exclude=exclude)
    np.testing.assert_array_equal(scores, again)
    assert np.sum(scores >= 4) == min(batch, n - len(exclude))
    assert np.all(scores[exclude] == -1.0)


def test_strategy_matches_the_function_and_runs_in_a_policy(blob_pool):
    X, blob, probas, _ = blob_pool
    strategy = WeightedClusters(
        uncertainty="margin", candidate_factor=3, min_candidates=10
    )
    context = ScoringContext(probas=probas, X=X, selected=np.array([5, 9]))
    np.testing.assert_array_equal(
        strategy.score(context, batch_size=6, rng=11),
        weighted_cluster_scores(
            probas,
            X,
            6,
            uncertainty="margin",
            candidate_factor=3,
            min_candidates=10,
            rng=11,
            exclude=np.array([5, 9]),
        ),
    )
    policy = BatchPolicy(
        components=(MixComponent("uncertain", "weighted_clusters", 1.0),),
        random_fraction=0.0,
    )
    batch = build_batch(policy, ScoringContext(probas=probas, X=X), batch_size=3, rng=0)
    assert set(blob[batch.positions]) == {0, 1, 2}
    assert batch.strategies == ("weighted_clusters",) * 3


@pytest.mark.parametrize(
    "params",
    [{"uncertainty": "vibes"}, {"candidate_factor": 0}, {"min_candidates": 0}],
)
def test_rejects_bad_params(params):
    with pytest.raises(ConfigError):
        WeightedClusters(**params)


def test_fast_fit_above_the_exact_limit(blob_pool):
    from labelwise.strategies._diversity import _fit_kmeans_fast

    X, blob, probas, outliers = blob_pool
    u = entropy(probas)
    scores = weighted_cluster_scores(probas, X, 3, rng=5, exact_limit=10)
    np.testing.assert_array_equal(
        scores, weighted_cluster_scores(probas, X, 3, rng=5, exact_limit=10)
    )
    order = np.argsort(-u, kind="stable")
    centres, labels = _fit_kmeans_fast(
        X[order], 3, seed=_seed_of(5), sample_weight=u[order] + 1e-9
    )
    near = np.linalg.norm(X[order] - centres[labels], axis=1)
    expected = {
        int(order[np.flatnonzero(labels == c)[np.argmin(near[labels == c])]])
        for c in range(3)
    }
    picks = set(np.flatnonzero(scores >= 4))
    assert picks == expected
    # Weighted seeding never centres a cluster on the certain blob.
    assert set(blob[list(picks)]) == {0, 1, 2} and not picks & set(outliers)


def test_cold_start_clusters_the_pool_unweighted(blob_pool):
    X, blob, _, _ = blob_pool
    strategy = WeightedClusters()
    context = ScoringContext(X=X)
    assert strategy.available(context)  # no model needed
    scores = strategy.score(context, batch_size=4, rng=0)
    picks = np.flatnonzero(scores >= 4)
    # Unweighted: one typical item per blob, the certain blob included.
    assert len(picks) == 4 and set(blob[picks]) == {0, 1, 2, 3}
    np.testing.assert_array_equal(scores, weighted_cluster_scores(None, X, 4, rng=0))
    assert strategy.preselect(context, n_keep=4, index=np.arange(len(X))) is None
