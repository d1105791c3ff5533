"""Greedy k-center and cluster quotas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.exceptions import ConfigError, InvalidInputError
from labelwise.strategies import (
    ClusterQuota,
    KCenter,
    ScoringContext,
    cluster_quota_scores,
    kcenter_greedy_scores,
)


def brute_force_greedy(
    X: np.ndarray, n_picks: int, centers: np.ndarray | None = None
) -> list[int]:
    """Textbook greedy k-center with a full distance matrix (small data only)."""
    if n_picks == 0:
        return []
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1))
    if centers is not None and len(centers):
        nearest = np.sqrt(((X[:, None, :] - centers[None]) ** 2).sum(-1)).min(axis=1)
        picks: list[int] = []
    else:
        first = int(np.argmin(((X - X.mean(axis=0)) ** 2).sum(axis=1)))
        nearest, picks = D[first].copy(), [first]
    while len(picks) < n_picks:
        masked = nearest.copy()
        masked[picks] = -np.inf
        pick = int(np.argmax(masked))
        picks.append(pick)
        nearest = np.minimum(nearest, D[pick])
    return picks


def test_kcenter_by_hand() -> None:
    X = np.array([[1.0, 0.0], [0.0, 2.0], [5.0, 0.0], [0.0, -7.0], [3.0, 3.0]])
    scores = kcenter_greedy_scores(X, 3, centers=np.zeros((1, 2)))
    # From the centre (0, 0) the farthest point is (0, -7), then (5, 0), then
    # (3, 3) at distance sqrt(13) from (5, 0). The others keep distances 1 and
    # 2 to (0, 0): offset = 1 + 2, picks score offset + 3, + 2, + 1.
    np.testing.assert_allclose(scores, [1.0, 2.0, 5.0, 6.0, 4.0])


def test_kcenter_without_centres_starts_nearest_the_mean() -> None:
    X = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [4.0, 4.0]])
    scores = kcenter_greedy_scores(X, 2)
    order = np.argsort(-scores)
    # The mean is (3.5, 3.5): the first pick is (4, 4), then the farthest of the
    # rest from it: (10, 0) and (0, 10) tie at sqrt(52), (0, 0) is sqrt(32).
    assert order[0] == 3
    assert order[1] == 1  # ties go to the lower position
    assert scores[3] > scores[1] > scores[2] > scores[0]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 40),  # with n=2 both points tie for nearest the mean
    d=st.integers(1, 4),
    n_picks=st.integers(0, 45),
    n_centers=st.integers(0, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_kcenter_top_scores_are_the_brute_force_greedy_picks(
    n: int, d: int, n_picks: int, n_centers: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    centers = rng.normal(size=(n_centers, d)) if n_centers else None
    scores = kcenter_greedy_scores(X, n_picks, centers=centers)
    picks = brute_force_greedy(X, min(n_picks, n), centers)
    top = np.argsort(-scores, kind="stable")[: len(picks)]
    np.testing.assert_array_equal(top, picks)
    rest = np.setdiff1d(np.arange(n), picks)
    if len(picks) and len(rest):
        assert scores[picks].min() > scores[rest].max()


def test_kcenter_never_picks_excluded_or_the_same_item_twice() -> None:
    X = np.zeros((6, 2))  # all duplicates: every distance is 0 after one pick
    scores = kcenter_greedy_scores(X, 10, exclude=np.array([0, 4]))
    assert scores[0] == scores[4] == -1.0
    assert np.all(scores[[1, 2, 3, 5]] > 0)
    assert len(np.unique(scores[[1, 2, 3, 5]])) == 4


def test_kcenter_rejects_centres_of_another_width() -> None:
    with pytest.raises(InvalidInputError, match="same number of features"):
        kcenter_greedy_scores(np.zeros((4, 3)), 1, centers=np.zeros((2, 2)))


def test_kcenter_strategy_covers_labeled_and_selected(make_blobs):
    X, blob = make_blobs([30, 30, 30, 30])
    labeled = X[blob == 0][:3] + 0.01
    selected = np.flatnonzero(blob == 1)[:2]
    context = ScoringContext(X=X, X_labeled=labeled, selected=selected)
    scores = KCenter().score(context, batch_size=2)
    expected = kcenter_greedy_scores(
        X, 2, centers=np.concatenate([labeled, X[selected]]), exclude=selected
    )
    np.testing.assert_array_equal(scores, expected)
    # Blobs 0 and 1 are covered: the two picks come from blobs 2 and 3.
    assert set(blob[np.argsort(-scores)[:2]]) == {2, 3}
    assert np.all(scores[selected] == scores.min())


def test_kcenter_strategy_default_picks() -> None:
    X = np.random.default_rng(0).normal(size=(150, 3))
    scores = KCenter().score(ScoringContext(X=X))
    np.testing.assert_array_equal(scores, kcenter_greedy_scores(X, 100))


# --- cluster quotas ----------------------------------------------------------


def test_cluster_quota_gives_proportional_quotas(make_blobs):
    X, blob = make_blobs([60, 30, 10])
    scores = ClusterQuota(n_clusters=3).score(ScoringContext(X=X), batch_size=10, rng=0)
    top = np.argsort(-scores)[:10]
    np.testing.assert_array_equal(np.bincount(blob[top], minlength=3), [6, 3, 1])


def test_cluster_quota_takes_the_items_closest_to_their_centroid(make_blobs):
    X, blob = make_blobs([60, 30, 10])
    scores = cluster_quota_scores(X, 3, rng=0)
    for b in range(3):
        members = np.flatnonzero(blob == b)
        dist = np.linalg.norm(X[members] - X[members].mean(axis=0), axis=1)
        rank = np.argsort(np.argsort(dist))
        np.testing.assert_allclose(
            scores[members], -(rank + 0.5) / len(members), rtol=1e-12
        )


def test_cluster_quota_counts_selected_items_against_the_quota(make_blobs):
    X, blob = make_blobs([60, 30, 10])
    selected = np.flatnonzero(blob == 0)[:2]
    scores = cluster_quota_scores(X, 3, rng=0, exclude=selected)
    assert np.all(scores[selected] == -1.0)
    top = np.argsort(-scores)[:8]
    np.testing.assert_array_equal(np.bincount(blob[top], minlength=3), [4, 3, 1])


def test_cluster_quota_uses_the_batch_size_by_default(make_blobs):
    X, _ = make_blobs([40, 40, 40])
    context = ScoringContext(X=X)
    np.testing.assert_array_equal(
        ClusterQuota().score(context, batch_size=7, rng=3),
        cluster_quota_scores(X, 7, rng=3),
    )
    np.testing.assert_array_equal(
        ClusterQuota().score(context, rng=3), cluster_quota_scores(X, 10, rng=3)
    )


def test_cluster_quota_fits_on_a_sample_of_large_pools(make_blobs):
    X, blob = make_blobs([300, 150, 50])
    first = cluster_quota_scores(X, 3, rng=1, max_fit_rows=60, n_init=1)
    again = cluster_quota_scores(X, 3, rng=1, max_fit_rows=60, n_init=1)
    np.testing.assert_array_equal(first, again)
    top = np.argsort(-first)[:10]
    np.testing.assert_array_equal(np.bincount(blob[top], minlength=3), [6, 3, 1])


def test_cluster_quota_with_fewer_distinct_points_than_clusters() -> None:
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 5, axis=0)
    scores = cluster_quota_scores(X, 8, rng=0)  # no k-means warning
    assert np.all(np.isfinite(scores))
    assert set(np.round(scores, 12)) == {-(r + 0.5) / 5 for r in range(5)}


@pytest.mark.parametrize(
    "params",
    [{"n_clusters": 0}, {"max_fit_rows": 1}, {"n_init": 0}, {"n_clusters": 2.5}],
)
def test_cluster_quota_rejects_bad_params(params):
    with pytest.raises(ConfigError, match="parameter of ClusterQuota"):
        ClusterQuota(**params)
