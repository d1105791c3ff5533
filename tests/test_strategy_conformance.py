"""Every registered strategy through one list of checks (STYLE rule 14).

The checks are parametrised over ``get_strategy_names()``, so a strategy
registered later is checked without touching this file. A strategy that uses
its rng must say, in ``PERMUTATION_PROPERTY`` below, which permutation property
it keeps if it is stronger than the default.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import fields, replace
from typing import Any

import numpy as np
import pytest

from labelwise._rowkeys import row_keys
from labelwise.exceptions import InvalidInputError, UnknownNameError
from labelwise.strategies import (
    ScoringContext,
    Strategy,
    get_strategy,
    get_strategy_names,
)

NAMES = get_strategy_names()
PROBA_READERS = [name for name in NAMES if get_strategy(name).reads_probas]
BATCH_SIZE = 12

# What permuting the pool does to the scores of each strategy.
#
#   property | strategies           | why it holds
#   ---------+----------------------+--------------------------------------------
#   exact    | every strategy with  | scores are a function of each item's own
#            | uses_rng=False       | rows; the continuous fixture has no ties
#   exact    | cluster_quota        | n=300 <= max_fit_rows: k-means is fitted on
#            |                      | every row, sorted lexicographically, with a
#            |                      | seed drawn from the rng: the fit ignores order
#   exact    | representative       | candidates reach k-means in decreasing
#            |                      | uncertainty, which has no ties here, so the
#            |                      | clusters ignore the order of the pool
#   exact    | density_weighted     | n=300 <= sample_size: no sampling, the rng
#            |                      | is unused
#   multiset | confidence_buckets,  | ranks inside a bucket are random per position,
#            | and any unlisted     | but each bucket's size (hence the multiset of
#            | uses_rng strategy    | scores) does not depend on the order
PERMUTATION_PROPERTY = {
    "cluster_quota": "exact",
    "confidence_buckets": "multiset",
    "density_weighted": "exact",
    "representative": "exact",
}


def _probas(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    raw = rng.gamma(1.0, size=shape)
    probas: np.ndarray = raw / raw.sum(axis=-1, keepdims=True)
    return probas


def make_arrays(
    n: int = 300, k: int = 3, d: int = 5, m: int = 4, seed: int = 0
) -> dict[str, Any]:
    """Every ScoringContext field, from continuous random data (no ties)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(3, d))
    X = centers[rng.integers(3, size=n)] + rng.normal(size=(n, d))
    n_labeled = 40
    labeled_correct = np.ones(n_labeled, dtype=bool)
    labeled_correct[[1, 7, 19, 30]] = False
    return {
        "probas": _probas(rng, (n, k)),
        "X": X,
        "committee_probas": _probas(rng, (m, n, k)),
        "committee_predictions": rng.normal(size=(m, n)),
        "X_labeled": centers[rng.integers(3, size=n_labeled)]
        + rng.normal(size=(n_labeled, d)),
        "labeled_correct": labeled_correct,
        "X_failures": rng.normal(scale=5.0, size=(6, d)),
        "costs": rng.uniform(0.5, 3.0, size=n),
        "selected": rng.choice(n, size=5, replace=False).astype(np.intp),
        "row_keys": row_keys(seed, np.arange(n)),
    }


def read_only_context(arrays: dict[str, Any]) -> ScoringContext:
    """A context whose arrays raise on any in-place write."""
    frozen = {}
    for name, value in arrays.items():
        array = np.array(value)
        array.flags.writeable = False
        frozen[name] = array
    return ScoringContext(**frozen)


def permuted(arrays: dict[str, Any], perm: np.ndarray) -> dict[str, Any]:
    """Reorder every per-item array by ``perm`` (new position j holds item perm[j])."""
    inverse = np.argsort(perm)
    out = dict(arrays)
    for name in ("probas", "X", "costs", "row_keys"):
        out[name] = arrays[name][perm]
    for name in ("committee_probas", "committee_predictions"):
        out[name] = arrays[name][:, perm]
    out["selected"] = inverse[arrays["selected"]]
    return out


@pytest.fixture
def arrays() -> dict[str, Any]:
    return make_arrays()


@pytest.fixture
def context(arrays: dict[str, Any]) -> ScoringContext:
    return read_only_context(arrays)


def test_fixture_populates_every_field(context: ScoringContext) -> None:
    assert all(context.has(name) for name in context.field_names())
    assert not np.all(context.labeled_correct)


def test_names_are_unique_and_match_the_strategies() -> None:
    assert len(NAMES) == len(set(NAMES))
    assert sorted(NAMES) == NAMES
    for name in NAMES:
        strategy = get_strategy(name)
        assert isinstance(strategy, Strategy)
        assert strategy.name == name


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_strategy("nope")
    message = str(err.value)
    assert "'nope' is not a strategy" in message
    assert all(name in message for name in NAMES)
    assert "get_strategy_names()" in message


@pytest.mark.parametrize("name", NAMES)
def test_params_round_trip(name: str) -> None:
    strategy = get_strategy(name)
    rebuilt = get_strategy(name, **strategy.params())
    assert rebuilt == strategy
    assert hash(rebuilt) == hash(strategy)
    assert repr(rebuilt).startswith(type(strategy).__name__ + "(")


@pytest.mark.parametrize("name", NAMES)
def test_available_only_with_its_requirements(
    name: str, context: ScoringContext
) -> None:
    strategy = get_strategy(name)
    assert strategy.available(context)
    assert not strategy.available(ScoringContext())
    for field in strategy.requires:
        assert not strategy.available(replace(context, **{field: None}))


@pytest.mark.parametrize("name", NAMES)
def test_output_is_finite_float64_of_shape_n(
    name: str, context: ScoringContext
) -> None:
    scores = get_strategy(name).score(context, batch_size=BATCH_SIZE, rng=0)
    assert isinstance(scores, np.ndarray)
    assert scores.shape == (context.n_items,)
    assert scores.dtype == np.float64
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", NAMES)
def test_without_batch_size(name: str, context: ScoringContext) -> None:
    scores = get_strategy(name).score(context, rng=0)
    assert scores.shape == (context.n_items,)
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", NAMES)
def test_same_rng_gives_same_scores(name: str, context: ScoringContext) -> None:
    strategy = get_strategy(name)
    first = strategy.score(context, batch_size=BATCH_SIZE, rng=7)
    again = strategy.score(context, batch_size=BATCH_SIZE, rng=7)
    from_generator = strategy.score(
        context, batch_size=BATCH_SIZE, rng=np.random.default_rng(7)
    )
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, from_generator)


@pytest.mark.parametrize("name", NAMES)
def test_permuting_the_pool_permutes_the_scores(
    name: str, arrays: dict[str, Any]
) -> None:
    strategy = get_strategy(name)
    perm = np.random.default_rng(1).permutation(len(arrays["X"]))
    scores = strategy.score(read_only_context(arrays), batch_size=BATCH_SIZE, rng=3)
    shuffled = strategy.score(
        read_only_context(permuted(arrays, perm)), batch_size=BATCH_SIZE, rng=3
    )
    default = "multiset" if strategy.uses_rng else "exact"
    if PERMUTATION_PROPERTY.get(name, default) == "exact":
        np.testing.assert_array_equal(shuffled, scores[perm])
    else:
        np.testing.assert_array_equal(np.sort(shuffled), np.sort(scores))


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_modified(name: str, arrays: dict[str, Any]) -> None:
    before = {key: np.array(value, copy=True) for key, value in arrays.items()}
    context = read_only_context(arrays)  # an in-place write would raise
    get_strategy(name).score(context, batch_size=BATCH_SIZE, rng=0)
    for field in fields(context):
        np.testing.assert_array_equal(getattr(context, field.name), before[field.name])
        assert not getattr(context, field.name).flags.writeable


def _corrupt(probas: np.ndarray, case: str) -> np.ndarray:
    """Break the first row of the last two axes of ``probas`` in one way."""
    bad = np.array(probas, copy=True)
    row = bad.reshape(-1, bad.shape[-1])  # a view: writes reach ``bad``
    if case == "rows_do_not_sum_to_1":
        row[0] *= 0.5
    elif case == "negative":
        row[0] = 0.0
        row[0, :2] = [-0.2, 1.2]
    elif case == "nan":
        row[0, 0] = np.nan
    elif case == "one_dimensional":
        return np.asarray(row[:, 0], dtype=np.float64)
    return bad


# The part of the message that says what was expected.
EXPECTED_IN_MESSAGE = {
    "rows_do_not_sum_to_1": "sum to 1",
    "negative": "[0, 1]",
    "nan": "finite",
    "one_dimensional": "-D array of shape",
}


@pytest.mark.parametrize("case", sorted(EXPECTED_IN_MESSAGE))
@pytest.mark.parametrize("name", PROBA_READERS)
def test_rejects_invalid_probabilities(
    name: str, case: str, arrays: dict[str, Any]
) -> None:
    strategy = get_strategy(name)
    field = "committee_probas" if "committee_probas" in strategy.requires else "probas"
    assert field in strategy.requires + strategy.optional
    broken = dict(arrays, **{field: _corrupt(arrays[field], case)})
    with pytest.raises(InvalidInputError) as err:
        strategy.score(read_only_context(broken), batch_size=BATCH_SIZE, rng=0)
    message = str(err.value)
    assert field in message
    assert EXPECTED_IN_MESSAGE[case] in message
    assert err.value.hint, "the message must say how to fix the input"
    assert err.value.hint in message


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_regression_variance_rejects_non_finite_predictions(
    bad: float, arrays: dict[str, Any]
) -> None:
    predictions = np.array(arrays["committee_predictions"], copy=True)
    predictions[2, 17] = bad
    context = read_only_context(dict(arrays, committee_predictions=predictions))
    with pytest.raises(InvalidInputError, match="must be finite") as err:
        get_strategy("regression_variance").score(context)
    assert "1 of 300 items" in str(err.value)
    assert err.value.hint


# --- memory -----------------------------------------------------------------
#
# Peak memory traced (tracemalloc sees NumPy's buffers; sklearn's C++ scratch
# buffers are not traced, but they are chunked too) while one strategy scores a
# 200,000-item pool with batch_size=100. The inputs (about 75 MB) exist before
# tracing starts, so only the strategy's own allocations count. Legitimate
# temporaries are O(n * k) or O(m * n): 8 MB each for n * k float64 (n=200,000,
# k=5), 6.4 MB for m * n. The bound, 80 MB, is half of one batch-by-pool float64
# matrix (100 x 200,000 x 8 B = 160 MB) and a 4,000,000th of an N x N one
# (320 GB), so it fails if any strategy builds either.
MEMORY_BOUND_BYTES = 80_000_000


@pytest.fixture(scope="module")
def big_context() -> ScoringContext:
    arrays = make_arrays(n=200_000, k=5, d=16, m=4, seed=5)
    arrays["X_labeled"] = arrays["X"][:500] + 0.1
    arrays["labeled_correct"] = np.arange(500) % 7 != 0
    arrays["selected"] = np.arange(0, 200_000, 20_000, dtype=np.intp)
    return read_only_context(arrays)


@pytest.mark.parametrize("name", NAMES)
def test_peak_memory_stays_bounded(name: str, big_context: ScoringContext) -> None:
    strategy = get_strategy(name)
    tracemalloc.start()
    try:
        scores = strategy.score(big_context, batch_size=100, rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scores.shape == (200_000,)
    assert peak < MEMORY_BOUND_BYTES, f"{name} peaked at {peak / 1e6:.1f} MB"
