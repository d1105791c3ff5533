import importlib
import math
from dataclasses import replace
from fractions import Fraction
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import labelwise.strategies as strategies_pkg
from labelwise.exceptions import ConfigError, InvalidInputError, PoolExhausted
from labelwise.policy import Batch, BatchPolicy, MixComponent, build_batch
from labelwise.strategies import ScoringContext, Strategy, get_strategy_names, margin

PROBA_STRATEGIES = ["margin", "entropy", "least_confidence", "confidence_buckets"]


def reference_apportionment(total, weights):
    """Largest remainder in exact arithmetic, ties to the earlier weight."""
    if not weights:
        return []
    quotas = [Fraction(total * w, sum(weights)) for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def control_size(policy, batch_size):
    return math.floor(policy.random_fraction * batch_size + 0.5)


def make_context(n, k=3, seed=0, **extra):
    rng = np.random.default_rng(seed)
    return ScoringContext(
        probas=rng.dirichlet(np.ones(k), size=n), X=rng.normal(size=(n, 4)), **extra
    )


# --- test-only strategies ----------------------------------------------------


class NeedsFailures(Strategy):
    """Available only once failures are known, like error_driven."""

    name = "test_needs_failures"
    requires: ClassVar[tuple[str, ...]] = ("X_failures",)

    def score(self, context, *, batch_size=None, rng=None):
        return np.ones(context.n_items)


class FewEligible(Strategy):
    """Finite scores for positions 0 and 1 only: it can fill at most 2 slots."""

    name = "test_few_eligible"
    requires: ClassVar[tuple[str, ...]] = ("probas",)

    def score(self, context, *, batch_size=None, rng=None):
        scores = np.full(context.n_items, -np.inf)
        scores[:2] = [2.0, 1.0]
        return scores


class RecordsSelected(Strategy):
    """Scores by position and remembers what ``context.selected`` it saw."""

    name = "test_records_selected"
    requires: ClassVar[tuple[str, ...]] = ("probas",)
    seen: ClassVar[list] = []

    def score(self, context, *, batch_size=None, rng=None):
        RecordsSelected.seen.append((context.selected.copy(), batch_size))
        return np.arange(context.n_items, dtype=float)


@pytest.fixture
def test_strategies(monkeypatch):
    for cls in (NeedsFailures, FewEligible, RecordsSelected):
        monkeypatch.setitem(strategies_pkg._REGISTRY._items, cls.name, cls)
    RecordsSelected.seen.clear()


# --- hypothesis invariants ---------------------------------------------------


@st.composite
def setups(draw):
    n = draw(st.integers(1, 80))
    batch_size = draw(st.integers(1, n))
    names = draw(st.permutations(PROBA_STRATEGIES))[: draw(st.integers(0, 4))]
    weights = draw(
        st.lists(st.integers(1, 12), min_size=len(names), max_size=len(names))
    )
    random_weight = draw(st.integers(0 if names else 1, 12))
    total = random_weight + sum(weights)
    policy = BatchPolicy(
        components=tuple(
            MixComponent(MixComponent.REASONS[i], name, w / total)
            for i, (name, w) in enumerate(zip(names, weights, strict=True))
        ),
        random_fraction=random_weight / total,
    )
    context = make_context(
        n, k=draw(st.integers(2, 5)), seed=draw(st.integers(0, 2**32 - 1))
    )
    seed = draw(st.integers(0, 2**32 - 1))
    return policy, weights, context, batch_size, seed


@settings(max_examples=150, deadline=None)
@given(setups())
def test_batch_invariants(setup):
    policy, weights, context, batch_size, seed = setup
    batch = build_batch(policy, context, batch_size=batch_size, rng=seed)
    n = context.n_items
    assert len(batch) == batch_size
    assert np.unique(batch.positions).size == batch_size
    assert batch.positions.min() >= 0 and batch.positions.max() < n
    assert batch.positions.dtype == np.intp
    r = control_size(policy, batch_size)
    assert batch.strategies.count("random") == r
    assert batch.strategies[:r] == ("random",) * r  # the control slice comes first
    assert "random_fill" not in batch.strategies  # every component is available
    expected = reference_apportionment(batch_size - r, weights)
    got = [batch.strategies.count(c.strategy) for c in policy.components]
    assert got == expected
    for component in policy.components:
        reasons = {
            reason
            for reason, strategy in zip(batch.reasons, batch.strategies, strict=True)
            if strategy == component.strategy
        }
        assert reasons <= {component.reason}
    is_random = np.array([s == "random" for s in batch.strategies])
    assert np.all(np.isnan(batch.scores[is_random]))
    assert np.all(np.isfinite(batch.scores[~is_random]))
    np.testing.assert_array_equal(batch.ids, batch.positions)
    assert batch.policy_version == policy.version

    again = build_batch(policy, context, batch_size=batch_size, rng=seed)
    np.testing.assert_array_equal(again.positions, batch.positions)
    np.testing.assert_array_equal(again.scores, batch.scores)
    assert again.reasons == batch.reasons and again.strategies == batch.strategies


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 200), batch_size=st.integers(1, 60), seed=st.integers(0, 2**31))
def test_each_component_takes_its_top_scores(n, batch_size, seed):
    batch_size = min(batch_size, n)
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 0.8),), random_fraction=0.2
    )
    context = make_context(n, seed=seed)
    batch = build_batch(policy, context, batch_size=batch_size, rng=seed)
    scores = margin(context.probas)
    picked = np.array([s == "margin" for s in batch.strategies])
    mine = batch.positions[picked]
    np.testing.assert_array_equal(batch.scores[picked], scores[mine])
    assert np.all(np.diff(batch.scores[picked]) <= 0)  # best first
    rest = np.setdiff1d(np.arange(n), batch.positions)
    if mine.size and rest.size:
        assert scores[mine].min() >= scores[rest].max()


def test_ties_are_broken_at_random_with_the_rng():
    n = 40
    context = ScoringContext(probas=np.full((n, 2), 0.5))  # every margin score ties
    policy = BatchPolicy((MixComponent("uncertain", "margin", 1.0),), random_fraction=0)
    firsts = {
        int(build_batch(policy, context, batch_size=5, rng=s).positions[0])
        for s in range(30)
    }
    assert len(firsts) > 10
    a = build_batch(policy, context, batch_size=5, rng=7).positions
    b = build_batch(policy, context, batch_size=5, rng=7).positions
    np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_control_slices():
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 0.5),), random_fraction=0.5
    )
    context = make_context(500)
    slices = {
        tuple(build_batch(policy, context, batch_size=20, rng=seed).positions[:10])
        for seed in range(20)
    }
    assert len(slices) == 20


def test_control_slice_is_uniform_over_the_pool():
    n, batch_size, runs = 12, 6, 1200
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 0.5),), random_fraction=0.5
    )
    context = make_context(n, seed=3)
    r = control_size(policy, batch_size)
    assert r == 3
    counts = np.zeros(n)
    for seed in range(runs):
        batch = build_batch(policy, context, batch_size=batch_size, rng=seed)
        counts[batch.positions[:r]] += 1
    frequency = counts / runs
    np.testing.assert_allclose(frequency, r / n, atol=0.05)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_rng_generator_is_used_and_advanced():
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 0.5),), random_fraction=0.5
    )
    context = make_context(300)
    gen = np.random.default_rng(1)
    first = build_batch(policy, context, batch_size=20, rng=gen)
    second = build_batch(policy, context, batch_size=20, rng=gen)
    assert not np.array_equal(first.positions[:10], second.positions[:10])
    np.testing.assert_array_equal(
        first.positions, build_batch(policy, context, batch_size=20, rng=1).positions
    )


# --- the hand-on rule --------------------------------------------------------


def test_unavailable_component_hands_slots_to_the_next(test_strategies):
    policy = BatchPolicy(
        components=(
            MixComponent("uncertain", "margin", 0.3),
            MixComponent("failure", "test_needs_failures", 0.3),
            MixComponent("uncertain", "entropy", 0.3),
        ),
        random_fraction=0.1,
    )
    batch = build_batch(policy, make_context(100), batch_size=20, rng=0)
    counts = batch.counts_by_reason()
    assert "failure" not in counts
    assert batch.strategies.count("random") == 2
    assert batch.strategies.count("margin") == 6
    assert batch.strategies.count("entropy") == 12  # its 6 plus the failure's 6
    # With failures known, the component takes its own share.
    known = make_context(100, X_failures=np.zeros((3, 4)))
    assert (
        build_batch(policy, known, batch_size=20, rng=0).counts_by_reason()["failure"]
        == 6
    )


def test_hand_on_cycles_to_the_first_component(test_strategies):
    policy = BatchPolicy(
        components=(
            MixComponent("uncertain", "margin", 0.6),
            MixComponent("failure", "test_needs_failures", 0.3),
        ),
        random_fraction=0.1,
    )
    batch = build_batch(policy, make_context(50), batch_size=10, rng=0)
    assert batch.strategies.count("margin") == 9
    assert batch.strategies.count("random") == 1
    assert "random_fill" not in batch.strategies


def test_real_error_driven_hands_on_without_failures():
    if "error_driven" not in get_strategy_names():
        pytest.skip("error_driven is not registered yet")
    policy = BatchPolicy(
        components=(
            MixComponent("failure", "error_driven", 0.5),
            MixComponent("uncertain", "margin", 0.5),
        ),
        random_fraction=0.0,
    )
    batch = build_batch(policy, make_context(60), batch_size=10, rng=0)
    assert batch.counts_by_reason() == {"uncertain": 10}


def test_component_with_too_few_eligible_items_hands_on(test_strategies):
    policy = BatchPolicy(
        components=(
            MixComponent("diverse", "test_few_eligible", 0.5),
            MixComponent("uncertain", "margin", 0.5),
        ),
        random_fraction=0.0,
    )
    batch = build_batch(policy, make_context(30), batch_size=10, rng=0)
    assert batch.strategies.count("test_few_eligible") == 2
    assert batch.strategies.count("margin") == 8
    np.testing.assert_array_equal(batch.positions[:2], [0, 1])


def test_only_unavailable_components_fill_at_random(test_strategies):
    policy = BatchPolicy(
        components=(MixComponent("failure", "test_needs_failures", 0.75),),
        random_fraction=0.25,
    )
    batch = build_batch(policy, make_context(30), batch_size=8, rng=0)
    assert batch.strategies == ("random",) * 2 + ("random_fill",) * 6
    assert batch.reasons == ("random",) * 8
    assert np.unique(batch.positions).size == 8


def test_components_see_what_is_already_selected(test_strategies):
    policy = BatchPolicy(
        components=(
            MixComponent("uncertain", "margin", 0.4),
            MixComponent("diverse", "test_records_selected", 0.4),
        ),
        random_fraction=0.2,
    )
    batch = build_batch(policy, make_context(50), batch_size=10, rng=0)
    [(selected, size)] = RecordsSelected.seen
    assert size == 4
    np.testing.assert_array_equal(selected, batch.positions[:6])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(5, 60),
    batch_size=st.integers(1, 30),
    fraction=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]),
    seed=st.integers(0, 2**31),
)
def test_cold_start_is_all_random(n, batch_size, fraction, seed):
    batch_size = min(batch_size, n)
    policy = BatchPolicy(
        components=(
            MixComponent("bucket", "confidence_buckets", (1 - fraction) / 2),
            MixComponent("uncertain", "margin", (1 - fraction) / 2),
        ),
        random_fraction=fraction,
    )
    ids = np.arange(1000, 1000 + n)
    batch = build_batch(
        policy, ScoringContext(), batch_size=batch_size, ids=ids, rng=seed
    )
    r = control_size(policy, batch_size)
    assert batch.strategies == ("random",) * r + ("random_fill",) * (batch_size - r)
    assert set(batch.reasons) == {"random"}
    assert np.all(np.isnan(batch.scores))
    np.testing.assert_array_equal(batch.ids, ids[batch.positions])
    assert np.unique(batch.ids).size == batch_size


# --- errors ------------------------------------------------------------------


def test_pool_exhausted():
    policy = BatchPolicy((MixComponent("uncertain", "margin", 0.9),))
    with pytest.raises(PoolExhausted) as info:
        build_batch(policy, make_context(12), batch_size=50)
    assert str(info.value) == (
        "Pool exhausted: 12 unlabeled items, batch asks for 50. Lower `batch_size` "
        "or import more items (`labelwise import …`)."
    )
    assert len(build_batch(policy, make_context(12), batch_size=12, rng=0)) == 12


@pytest.mark.parametrize("size", [0, -3, 2.5])
def test_bad_batch_size(size):
    policy = BatchPolicy((MixComponent("uncertain", "margin", 0.9),))
    with pytest.raises(ConfigError, match="'batch_size' parameter of build_batch"):
        build_batch(policy, make_context(12), batch_size=size)


def test_pool_size_needs_arrays_or_ids():
    policy = get_random_policy()
    with pytest.raises(InvalidInputError, match=r"needs the pool size.*Pass ids="):
        build_batch(policy, ScoringContext(), batch_size=3)
    with pytest.raises(InvalidInputError, match="context has 10 items, ids has 9"):
        build_batch(policy, make_context(10), batch_size=3, ids=np.arange(9))
    with pytest.raises(InvalidInputError, match="1-D"):
        build_batch(policy, ScoringContext(), batch_size=3, ids=np.zeros((3, 2)))


def get_random_policy():
    return BatchPolicy(components=(), random_fraction=1.0, name="random")


def test_bad_rng():
    with pytest.raises(ConfigError, match="rng must be"):
        build_batch(get_random_policy(), make_context(5), batch_size=2, rng="seed")


# --- class quotas ------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    batch_size=st.integers(1, 40),
    quotas=st.lists(st.integers(0, 10), min_size=3, max_size=3),
    seed=st.integers(0, 2**31),
)
def test_class_quotas_are_met_when_achievable(batch_size, quotas, seed):
    total = max(sum(quotas), 10)
    shares = {name: q / total for name, q in zip("abc", quotas, strict=True)}
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 0.8),),
        random_fraction=0.2,
        class_quotas=shares,
    )
    rng = np.random.default_rng(seed)
    n = 200
    probas = rng.dirichlet(np.ones(3), size=n)
    probas[np.arange(n), np.arange(n) % 3] += 2.0  # >= 66 items predicted per class
    probas /= probas.sum(axis=1, keepdims=True)
    context = ScoringContext(probas=probas)
    batch = build_batch(
        policy, context, batch_size=batch_size, classes=list("abc"), rng=seed
    )
    predicted = probas.argmax(axis=1)[batch.positions]
    chosen = np.array([s == "margin" for s in batch.strategies])
    slots = int(chosen.sum())
    assert slots == batch_size - control_size(policy, batch_size)
    for label, name in enumerate("abc"):
        got = int(np.count_nonzero(predicted[chosen] == label))
        assert got >= math.floor(shares[name] * slots + 1e-9)


def test_class_quotas_override_scores():
    n = 100
    probas = np.tile([0.5, 0.5], (n, 1))
    probas[:10] = [0.1, 0.9]  # the only class-1 items, and the least uncertain
    probas[10:] = np.linspace([0.5, 0.5], [0.9, 0.1], n - 10)
    context = ScoringContext(probas=probas)
    plain = BatchPolicy((MixComponent("uncertain", "margin", 1.0),), random_fraction=0)
    quota = replace(plain, class_quotas={"yes": 0.4})
    picked = build_batch(plain, context, batch_size=10, classes=["no", "yes"], rng=0)
    assert picked.positions.min() >= 10  # by score alone, no class-1 item

    batch = build_batch(quota, context, batch_size=10, classes=["no", "yes"], rng=0)
    assert np.count_nonzero(batch.positions < 10) == 4


def test_class_quotas_need_known_labels():
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 1.0),),
        random_fraction=0,
        class_quotas={"cat": 0.5},
    )
    with pytest.raises(ConfigError, match="'cat' that the model does not predict"):
        build_batch(
            policy, make_context(20, k=2), batch_size=5, classes=["dog", "bird"]
        )
    with pytest.raises(InvalidInputError, match="classes must name the 2 columns"):
        build_batch(policy, make_context(20, k=2), batch_size=5, classes=["cat"])


# --- cost awareness ----------------------------------------------------------


def test_cost_aware_scores_are_per_unit_cost():
    if not hasattr(importlib.import_module("labelwise.strategies"), "per_unit_cost"):
        pytest.skip("labelwise.strategies.per_unit_cost is not written yet")
    from labelwise.strategies import per_unit_cost

    n = 60
    context = make_context(n, costs=np.linspace(1.0, 50.0, n))
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 1.0),), random_fraction=0, cost_aware=True
    )
    batch = build_batch(policy, context, batch_size=10, rng=0)
    expected = np.asarray(per_unit_cost(margin(context.probas), context.costs))
    np.testing.assert_allclose(batch.scores, expected[batch.positions])
    rest = np.setdiff1d(np.arange(n), batch.positions)
    assert expected[batch.positions].min() >= expected[rest].max()
    plain = build_batch(
        replace(policy, cost_aware=False), context, batch_size=10, rng=0
    )
    np.testing.assert_allclose(plain.scores, margin(context.probas)[plain.positions])


# --- the Batch object --------------------------------------------------------


def test_batch_helpers():
    policy = BatchPolicy(
        (MixComponent("uncertain", "margin", 0.75),), random_fraction=0.25
    )
    ids = np.array([f"item-{i}" for i in range(20)])
    batch = build_batch(policy, make_context(20), batch_size=4, ids=ids, rng=0)
    assert isinstance(batch, Batch)
    assert batch.counts_by_reason() == {"random": 1, "uncertain": 3}
    records = batch.to_records()
    assert [r["rank"] for r in records] == [1, 2, 3, 4]
    assert records[0]["score"] is None and records[0]["strategy"] == "random"
    assert records[1]["id"] == ids[batch.positions[1]]
    assert isinstance(records[1]["id"], str)
    assert records[1]["score"] == pytest.approx(float(batch.scores[1]))
    assert set(records[0]) == {"id", "reason", "strategy", "score", "rank"}
    assert "uncertain=3" in repr(batch)


def test_cost_aware_keeps_ineligible_items_out(test_strategies):
    if not hasattr(importlib.import_module("labelwise.strategies"), "per_unit_cost"):
        pytest.skip("labelwise.strategies.per_unit_cost is not written yet")
    policy = BatchPolicy(
        components=(
            MixComponent("diverse", "test_few_eligible", 0.5),
            MixComponent("uncertain", "margin", 0.5),
        ),
        random_fraction=0.0,
        cost_aware=True,
    )
    context = make_context(30, costs=np.linspace(1.0, 3.0, 30))
    batch = build_batch(policy, context, batch_size=10, rng=0)
    assert batch.strategies.count("test_few_eligible") == 2
    assert sorted(batch.positions[:2].tolist()) == [0, 1]
    assert np.all(np.isfinite(batch.scores))
