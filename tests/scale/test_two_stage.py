"""Two-stage selection: chunked, merged in any order, equals the in-memory batch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise._rowkeys import row_keys, smallest_keys, top_rows
from labelwise.policy import BatchPolicy, MixComponent, build_batch, get_policy
from labelwise.scale import PoolChunk, make_plan, reduce_chunk, select_chunked
from labelwise.strategies import ScoringContext, entropy

POLICIES = {
    "default": get_policy("default"),
    "buckets_mix": get_policy("buckets_mix"),
    "representative": BatchPolicy(
        components=(
            MixComponent("representative", "representative", 0.5),
            MixComponent("uncertain", "entropy", 0.4),
        ),
        random_fraction=0.1,
    ),
    # The default's shape with a small CLUE floor, so that a few hundred rows
    # are enough for the shortlist to leave rows out.
    "clue": BatchPolicy(
        components=(
            MixComponent(
                "diverse", "weighted_clusters", 0.4, params={"min_candidates": 40}
            ),
            MixComponent("uncertain", "representative", 0.4),
            MixComponent("failure", "error_driven", 0.1),
        ),
        random_fraction=0.1,
    ),
    "quotas": BatchPolicy(
        components=(
            MixComponent("uncertain", "margin", 0.5),
            MixComponent("failure", "error_driven", 0.3),
        ),
        random_fraction=0.2,
        class_quotas={"0": 0.3, "1": 0.2},
    ),
    "pointwise": BatchPolicy(
        components=(
            MixComponent("uncertain", "least_confidence", 0.4),
            MixComponent("failure", "error_driven", 0.3),
            MixComponent("bucket", "confidence_buckets", 0.2),
        ),
        random_fraction=0.1,
    ),
}


def make_pool(n, k, seed, *, ties=False):
    rng = np.random.default_rng(seed)
    probas = rng.dirichlet(np.ones(k), size=n)
    if ties:  # few distinct rows: many exact score ties
        probas = probas[rng.integers(0, 4, size=n)]
    X = rng.normal(size=(n, 3)).astype(np.float32)
    X_labeled = rng.normal(size=(12, 3))
    correct = rng.random(12) < 0.6
    correct[0] = False  # at least one known error
    return probas, X, X_labeled, correct


def chunks_of(probas, X, ids, size, order):
    n = probas.shape[0]
    starts = list(range(0, n, size))
    return [
        PoolChunk(
            index=np.arange(s, min(s + size, n)),
            ids=ids[s : s + size],
            probas=probas[s : s + size],
            X=X[s : s + size],
        )
        for s in (starts[i] for i in order(len(starts)))
    ]


@st.composite
def setups(draw):
    n = draw(st.integers(20, 600))
    batch = draw(st.integers(1, min(n, 40)))
    return {
        "n": n,
        "k": draw(st.integers(2, 4)),
        "batch": batch,
        "chunk": draw(st.integers(1, n)),
        "sample": draw(st.integers(1, 120)),
        "policy": draw(st.sampled_from(sorted(POLICIES))),
        "pool_seed": draw(st.integers(0, 2**32 - 1)),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "ties": draw(st.booleans()),
        "shuffle": draw(st.integers(0, 2**16)),
    }


@settings(max_examples=60, deadline=None)
@given(setups())
def test_chunked_equals_in_memory(s):
    probas, X, X_labeled, correct = make_pool(
        s["n"], s["k"], s["pool_seed"], ties=s["ties"]
    )
    policy = POLICIES[s["policy"]]
    ids = np.arange(s["n"]) * 10 + 7
    context = ScoringContext(
        probas=probas, X=X, X_labeled=X_labeled, labeled_correct=correct
    )
    common = {"batch_size": s["batch"], "rng": s["seed"], "sample_size": s["sample"]}
    whole = build_batch(policy, context, ids=ids, **common)
    in_chunks = build_batch(policy, context, ids=ids, chunk_size=s["chunk"], **common)
    shuffler = np.random.default_rng(s["shuffle"])
    streamed = select_chunked(
        policy,
        chunks_of(probas, X, ids, s["chunk"], shuffler.permutation),
        X_labeled=X_labeled,
        labeled_correct=correct,
        **common,
    )
    for other in (in_chunks, streamed):
        np.testing.assert_array_equal(other.positions, whole.positions)
        np.testing.assert_array_equal(other.ids, whole.ids)
        assert other.reasons == whole.reasons
        assert other.strategies == whole.strategies
        np.testing.assert_array_equal(other.scores, whole.scores)
    np.testing.assert_array_equal(whole.ids, ids[whole.positions])


@pytest.mark.parametrize("policy", ["default", "representative"])
def test_chunked_equals_in_memory_with_the_fast_kmeans(policy, monkeypatch):
    """Above the exact k-means limits the chunked and in-memory paths still agree."""
    from labelwise.strategies import _representative

    fast = []
    real = _representative._fit_kmeans_fast

    def spy(points, n_clusters, **kwargs):
        weighted = kwargs.get("sample_weight") is not None
        fast.append((points.shape[0] * n_clusters, weighted))
        return real(points, n_clusters, **kwargs)

    monkeypatch.setattr(_representative, "_fit_kmeans_fast", spy)
    probas, X, X_labeled, correct = make_pool(6000, 3, 8)
    ids = np.arange(6000) * 3
    context = ScoringContext(
        probas=probas, X=X, X_labeled=X_labeled, labeled_correct=correct
    )
    # Batch 500. Default: CLUE gets 180 slots over max(10 x 180, 3,000)
    # candidates (540,000 > WEIGHTED_EXACT_LIMIT), representative 180 over
    # 1,800 (324,000 > EXACT_KMEANS_LIMIT). Other policy: representative 250
    # slots over 2,500 (625,000).
    common = {"batch_size": 500, "rng": 4, "sample_size": 1500}
    whole = build_batch(POLICIES[policy], context, ids=ids, **common)
    unweighted = [size for size, weighted in fast if not weighted]
    assert unweighted and min(unweighted) > _representative.EXACT_KMEANS_LIMIT
    weighted = [size for size, weighted in fast if weighted]
    if policy == "default":
        assert weighted and min(weighted) > _representative.WEIGHTED_EXACT_LIMIT
    else:
        assert not weighted
    in_chunks = build_batch(
        POLICIES[policy], context, ids=ids, chunk_size=2500, **common
    )
    streamed = select_chunked(
        POLICIES[policy],
        chunks_of(probas, X, ids, 1700, lambda k: np.arange(k)[::-1]),
        X_labeled=X_labeled,
        labeled_correct=correct,
        **common,
    )
    for other in (in_chunks, streamed):
        np.testing.assert_array_equal(other.positions, whole.positions)
        assert other.strategies == whole.strategies
        np.testing.assert_array_equal(other.scores, whole.scores)


@settings(max_examples=40, deadline=None)
@given(setups(), st.sampled_from(["pointwise", "representative", "clue"]))
def test_policies_without_geometry_lose_nothing_to_the_shortlist(s, name):
    """Pointwise and candidate-clustering components (the default's kind: no
    k-center, cluster quotas or density over the sample) lose nothing to the
    shortlist: its batch is the full pool's."""
    probas, X, X_labeled, correct = make_pool(
        s["n"], s["k"], s["pool_seed"], ties=s["ties"]
    )
    policy = POLICIES[name]
    context = ScoringContext(
        probas=probas, X=X, X_labeled=X_labeled, labeled_correct=correct
    )
    small = build_batch(
        policy, context, batch_size=s["batch"], rng=s["seed"], sample_size=s["sample"]
    )
    full = build_batch(
        policy, context, batch_size=s["batch"], rng=s["seed"], sample_size=s["n"]
    )
    np.testing.assert_array_equal(small.positions, full.positions)
    assert small.strategies == full.strategies


@pytest.mark.parametrize("seed", [1, 2])
def test_default_policy_loses_nothing_to_the_shortlist(seed):
    """At its real CLUE floor (3,000 candidates) on a pool 100 times the sample.

    The control slice sits in the sample and is chosen first, so CLUE's
    candidates reach below its 3,000 most uncertain rows; its preselection
    keeps ``min_candidates + batch_size`` rows for that.
    """
    probas, X, X_labeled, correct = make_pool(20_000, 3, 10 + seed)
    context = ScoringContext(
        probas=probas, X=X, X_labeled=X_labeled, labeled_correct=correct
    )
    policy = get_policy("default")
    small = build_batch(policy, context, batch_size=40, rng=seed, sample_size=200)
    full = build_batch(policy, context, batch_size=40, rng=seed, sample_size=20_000)
    assert small.counts_by_reason() == {
        "random": 4,
        "diverse": 16,
        "uncertain": 16,
        "failure": 4,
    }
    # The case that needs the + batch_size: control-slice rows among CLUE's
    # 3,000 most uncertain, so its candidates reach below them.
    top = set(np.argsort(-entropy(probas), kind="stable")[:3000].tolist())
    control = small.positions[np.asarray(small.reasons) == "random"]
    assert any(int(p) in top for p in control)
    # Scores may differ: error_driven scales by the median over what it sees.
    np.testing.assert_array_equal(small.positions, full.positions)
    assert small.strategies == full.strategies


def test_shortlist_is_small_and_holds_the_control_sample():
    probas, X, X_labeled, correct = make_pool(20_000, 3, 1)
    policy = get_policy("default")
    plan, _ = make_plan(
        policy,
        batch_size=50,
        rng=3,
        sample_size=500,
        X_labeled=X_labeled,
        labeled_correct=correct,
    )
    chunk = PoolChunk(index=np.arange(20_000), probas=probas, X=X)
    short = reduce_chunk(plan, chunk)
    # 500 sampled + the default's preselections: weighted_clusters (CLUE)
    # keeps its max(10 x 50, min_candidates 3,000 + 50) most uncertain by
    # entropy, representative its candidate_factor (10) x 50 most uncertain by
    # margin, error_driven its top 50.
    assert 500 + 3050 <= len(short) <= 500 + 3050 + 10 * 50 + 50
    assert np.all(np.diff(short.index) > 0)
    keys = row_keys(plan.key_seed, np.arange(20_000))
    sample = smallest_keys(keys, np.arange(20_000), 500)
    kept = set(short.index.tolist())
    assert set(sample.tolist()) <= kept
    clue = np.argsort(-entropy(probas), kind="stable")[:3050]
    assert set(clue.tolist()) <= kept


def test_pool_within_the_sample_is_its_own_shortlist():
    probas, X, *_ = make_pool(300, 3, 2)
    plan, _ = make_plan(get_policy("default"), batch_size=10, rng=0)
    chunk = PoolChunk(index=np.arange(300), probas=probas, X=X)
    assert len(reduce_chunk(plan, chunk)) == 300


def test_row_keys_depend_on_seed_and_index_only():
    a = row_keys(5, np.arange(1000))
    b = row_keys(5, np.arange(500, 1000))
    np.testing.assert_array_equal(a[500:], b)
    assert not np.array_equal(a, row_keys(6, np.arange(1000)))
    assert a.min() >= 0.0 and a.max() < 1.0
    assert np.unique(a).size == 1000
    # Roughly uniform: a decile holds about a tenth.
    big = row_keys(11, np.arange(100_000))
    counts = np.histogram(big, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 10_000) < 500)


def test_top_rows_is_a_total_order():
    scores = np.array([1.0, 2.0, 2.0, np.nan, 0.5, 2.0])
    keys = np.array([0.1, 0.5, 0.5, 0.0, 0.3, 0.2])
    index = np.arange(6)
    np.testing.assert_array_equal(top_rows(scores, keys, index, 3), [5, 1, 2])
    np.testing.assert_array_equal(top_rows(scores, keys, index, 10), [5, 1, 2, 0, 4])


def test_control_slice_is_uniform_over_a_large_pool():
    probas, X, *_ = make_pool(5000, 3, 4)
    context = ScoringContext(probas=probas, X=X)
    policy = get_policy("random")
    hits = np.zeros(5000)
    for seed in range(200):
        batch = build_batch(policy, context, batch_size=50, rng=seed, sample_size=100)
        hits[batch.positions] += 1
    # 10,000 draws over 5,000 rows: each decile of the pool gets about 1,000.
    per_decile = hits.reshape(10, 500).sum(axis=1)
    assert np.all(np.abs(per_decile - 1000) < 150)


def test_chunk_size_must_be_positive():
    probas, X, *_ = make_pool(30, 3, 0)
    with pytest.raises(Exception, match="chunk_size"):
        build_batch(
            get_policy("margin"),
            ScoringContext(probas=probas, X=X),
            batch_size=5,
            chunk_size=0,
        )
