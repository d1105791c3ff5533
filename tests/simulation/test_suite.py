"""The efficiency suite's cases: batch choices, names, and what each comparison runs."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelwise.exceptions import ConfigError
from labelwise.simulation import SimulationConfig
from labelwise.simulation._suite import (
    EfficiencyCase,
    default_cases,
    expand_cases,
    parse_batches,
)

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"


def test_parse_batches_names_and_sizes_in_order_without_repeats():
    assert parse_batches("main") == ["main"]
    assert parse_batches("main, alt") == ["main", "alt"]
    assert parse_batches("10,50,10") == [10, 50]
    assert parse_batches("alt,25,main,") == ["alt", 25, "main"]


@pytest.mark.parametrize("text", ["big", "0", "-5", "2.5", "main,1e3", ",", ""])
def test_parse_batches_refuses_what_is_not_a_batch(text):
    with pytest.raises(ConfigError, match="'batches' parameter") as info:
        parse_batches(text)
    assert "--batches main,alt" in (info.value.hint or "")


@given(st.lists(st.integers(1, 10_000), min_size=1, max_size=8))
def test_parse_batches_reads_back_any_list_of_sizes(sizes):
    assert parse_batches(",".join(map(str, sizes))) == list(dict.fromkeys(sizes))


def test_batch_choices_resolve_per_case():
    (trec, iris) = default_cases(DATASETS, ["trec", "iris"])
    assert [trec.batch_size(c) for c in ("main", "alt", 40)] == [30, 50, 40]
    assert [iris.batch_size(c) for c in ("main", "alt", 7)] == [5, 10, 7]


def test_batch_must_leave_more_than_one_round():
    (iris,) = default_cases(DATASETS, ["iris"])  # budget 60, initial 6
    assert iris.batch_size(53) == 53
    with pytest.raises(ConfigError, match=r"smaller than the budget minus the initial"):
        iris.batch_size(54)
    with pytest.raises(ConfigError, match="60 - 6 = 54") as info:
        expand_cases([iris], [0.0], [10, 100])
    assert "below 54 to --batches" in (info.value.hint or "")


def test_alt_needs_an_alt_size():
    case = EfficiencyCase("own", "sklearn:iris", SimulationConfig(budget=60))
    assert case.batch_size("main") == 20
    with pytest.raises(ConfigError, match="no alt batch size"):
        case.batch_size("alt")


def test_expand_cases_without_batches_keeps_todays_names():
    base = default_cases(DATASETS, ["iris", "wine"])
    cases = expand_cases(base, [0.0, 0.3])
    assert [c.name for c in cases] == ["iris", "iris+noise30", "wine", "wine+noise30"]
    assert [c.config.batch_size for c in cases] == [5, 5, 5, 5]
    assert cases[1].config.noise == 0.3


def test_expand_cases_names_every_batch():
    (trec,) = default_cases(DATASETS, ["trec"])
    cases = expand_cases([trec], [0.0, 0.1], parse_batches("main,alt,30"))
    # main (30) and 30 are the same size: it runs once.
    assert [c.name for c in cases] == [
        "trec@b30",
        "trec@b50",
        "trec+noise10@b30",
        "trec+noise10@b50",
    ]
    assert [(c.config.batch_size, c.config.noise) for c in cases] == [
        (30, 0.0),
        (50, 0.0),
        (30, 0.1),
        (50, 0.1),
    ]
    assert {c.config.budget for c in cases} == {300}


def test_mnist_is_an_alias_of_mnist_test10k():
    (case,) = default_cases(DATASETS, ["mnist"])
    assert case.name == "mnist_test10k"
    assert case.source.endswith("mnist_test10k.npz")
