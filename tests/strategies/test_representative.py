"""Representative sampling within uncertainty, and information density."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans

from labelwise.exceptions import ConfigError, InvalidInputError
from labelwise.strategies import (
    DensityWeighted,
    Representative,
    ScoringContext,
    _representative,
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


# --- exact k-means below EXACT_KMEANS_LIMIT, the fast fit above it ----------


def exact_reference(probas, X, batch_size, *, rng, candidate_factor=10, n_init=3):
    """The scores as k-means gave them before the fast path existed (by hand)."""
    u = np.clip(margin(probas), 0.0, 1.0)
    seed = int(np.random.default_rng(rng).integers(np.iinfo(np.int32).max))
    candidates = np.argsort(-u, kind="stable")[: candidate_factor * batch_size]
    labels = (
        KMeans(n_clusters=batch_size, n_init=n_init, random_state=seed)
        .fit(X[candidates])
        .labels_
    )
    _, first = np.unique(labels, return_index=True)
    scores = u.copy()
    scores[candidates] += 2.0
    scores[candidates[first]] += 2.0
    return scores


@pytest.fixture
def spy_fits(monkeypatch):
    """Record which k-means ran and the labels it gave, by name."""
    calls = []
    for name in ("_fit_kmeans", "_fit_kmeans_fast"):
        real = getattr(_representative, name)

        def spy(points, n_clusters, *, _real=real, _name=name, **kwargs):
            centroids, labels = _real(points, n_clusters, **kwargs)
            calls.append((_name, points.shape[0], n_clusters, labels))
            return centroids, labels

        monkeypatch.setattr(_representative, name, spy)
    return calls


@pytest.mark.parametrize(("n", "batch"), [(400, 5), (1500, 50), (3000, 90)])
def test_exact_kmeans_below_the_limit_is_the_old_behaviour(
    n, batch, random_probas, spy_fits
):
    # Issue #10's efficiency table: pools of at most 3,000 items, the default
    # policy's representative share at batches 5 to 150 (at most 90 clusters
    # over 900 candidates) and single-strategy runs at batch 50.
    X = np.random.default_rng(n).normal(size=(n, 8))
    probas = random_probas(n, k=3, seed=batch)
    assert 10 * batch * batch <= _representative.EXACT_KMEANS_LIMIT
    scores = representative_scores(probas, X, batch, rng=7)
    np.testing.assert_array_equal(scores, exact_reference(probas, X, batch, rng=7))
    np.testing.assert_array_equal(
        scores, representative_scores(probas, X, batch, rng=7, exact_limit=None)
    )
    assert [c[0] for c in spy_fits] == ["_fit_kmeans", "_fit_kmeans"]


def test_above_the_limit_the_fast_fit_runs(random_probas, spy_fits):
    # 300 clusters over 3,000 candidates: 900,000 > 90,000.
    X = np.random.default_rng(0).normal(size=(4000, 16))
    probas = random_probas(4000, seed=1)
    scores = representative_scores(probas, X, 300, rng=3)
    assert [c[:3] for c in spy_fits] == [("_fit_kmeans_fast", 3000, 300)]
    # One representative per cluster, and no cluster is empty on distinct rows.
    assert np.unique(spy_fits[0][3]).size == 300
    assert np.sum(scores >= 4) == 300
    assert np.sum(scores >= 2) == 3000


@pytest.mark.parametrize(
    ("limit", "fit"), [(81_000, "_fit_kmeans"), (80_999, "_fit_kmeans_fast")]
)
def test_the_limit_is_inclusive(limit, fit, random_probas, spy_fits):
    X = np.random.default_rng(1).normal(size=(1200, 4))
    probas = random_probas(1200, seed=3)
    representative_scores(probas, X, 90, rng=0, exact_limit=limit)  # 900 x 90
    assert [c[:3] for c in spy_fits] == [(fit, 900, 90)]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(30, 300),
    batch=st.integers(2, 25),
    factor=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
    duplicates=st.booleans(),
)
def test_fast_fit_picks_the_most_uncertain_of_every_cluster(
    n, batch, factor, seed, duplicates
):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    if duplicates:  # few distinct rows: clusters are reduced to them
        X = X[rng.integers(0, 5, size=n)]
    probas = probas_with_margin(rng.uniform(size=n))
    u = margin(probas)
    exclude = rng.choice(n, size=n // 10, replace=False)
    calls = []
    real = _representative._fit_kmeans_fast

    def spy(points, n_clusters, **kwargs):
        result = real(points, n_clusters, **kwargs)
        calls.append(result[1])
        return result

    original = _representative._fit_kmeans_fast
    _representative._fit_kmeans_fast = spy
    try:
        scores = representative_scores(
            probas,
            X,
            batch,
            candidate_factor=factor,
            rng=seed,
            exclude=exclude,
            exact_limit=0,
        )
    finally:
        _representative._fit_kmeans_fast = original
    eligible = np.setdiff1d(np.arange(n), exclude)
    candidates = eligible[np.argsort(-u[eligible], kind="stable")][: factor * batch]
    reps = np.flatnonzero(scores >= 4)
    if batch >= candidates.size:
        assert not calls
        assert set(reps) == set(candidates)
        return
    (labels,) = calls
    assert reps.size == np.unique(labels).size <= batch
    # Each cluster's representative is its most uncertain candidate (the first
    # in the stable uncertainty order), and it is the only one of its cluster.
    for label in np.unique(labels):
        members = candidates[labels == label]
        assert members[0] in reps
        assert u[members[0]] == u[members].max()
        assert np.isin(members, reps).sum() == 1
    assert set(np.flatnonzero(scores >= 2)) == set(candidates)
    assert np.all(scores[exclude] == -1.0)


def test_fast_fit_is_deterministic_by_seed(random_probas):
    X = np.random.default_rng(5).normal(size=(3000, 8))
    probas = random_probas(3000, seed=2)
    first = representative_scores(probas, X, 200, rng=11)
    np.testing.assert_array_equal(first, representative_scores(probas, X, 200, rng=11))
    np.testing.assert_array_equal(
        first,
        representative_scores(probas, X, 200, rng=np.random.default_rng(11)),
    )
    assert not np.array_equal(first, representative_scores(probas, X, 200, rng=12))


def test_fast_fit_still_finds_every_blob(make_blobs):
    X, blob = make_blobs([60, 60, 60, 60, 60, 60], d=3)
    rng = np.random.default_rng(4)
    u = rng.uniform(0.0, 0.5, size=len(X))
    u[blob == 0] += 0.45  # the most uncertain items all sit in blob 0
    probas = probas_with_margin(u)
    scores = representative_scores(
        probas, X, 6, candidate_factor=60, rng=0, exact_limit=0
    )
    top = np.argsort(-scores)[:6]
    assert set(blob[top]) == set(range(6))
    for item in top:
        assert u[item] == u[blob == blob[item]].max()


def test_exact_limit_must_be_a_non_negative_int(blob_pool):
    X, _, probas = blob_pool
    with pytest.raises(ConfigError, match="exact_limit"):
        representative_scores(probas, X, 4, exact_limit=-1)


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
